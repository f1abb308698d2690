"""Resource limits for reading an untrusted document.

The PDF parser runs in a child process under these limits, so a hostile
file ends with :class:`~.errors.LimitExceeded` instead of hanging or
exhausting the sender's machine. The defaults fit treatment summaries (a few
pages, well under a megabyte) with a wide margin.
"""

from __future__ import annotations

from dataclasses import dataclass

# A treatment summary is a few pages; 50 MiB leaves room for scanned letterheads.
MAX_INPUT_BYTES = 50 * 1024 * 1024
# Summaries run to a handful of pages; a long report is still far below this.
MAX_PAGES = 500
# Total bytes decoded from content streams, and the per-stream cap given to pypdf.
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
# Address space of the parsing child: Python and pypdf need ~100 MiB of it.
MAX_MEMORY_BYTES = 1024 * 1024 * 1024
# Wall time of the parsing child; a normal summary takes well under a second.
TIMEOUT_SECONDS = 20.0
# Plain text is scanned in-process; larger text is not a treatment summary.
MAX_TEXT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Limits for one inspection; every field defaults to the constant of the same name."""

    max_input_bytes: int = MAX_INPUT_BYTES
    max_pages: int = MAX_PAGES
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
    max_memory_bytes: int = MAX_MEMORY_BYTES
    timeout_seconds: float = TIMEOUT_SECONDS
    max_text_bytes: int = MAX_TEXT_BYTES

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, not {value!r}")

    def to_json(self) -> dict[str, float]:
        """The limits as a JSON object (what the parsing child receives)."""
        return dict(vars(self))
