"""Resource limits for reading an untrusted document.

The PDF parser runs in a child process under these limits, so a hostile
file ends with :class:`~.errors.LimitExceeded` instead of hanging or
exhausting the sender's machine. The defaults fit treatment summaries (a few
pages, well under a megabyte) with a wide margin.

Every limit is checked before the work it bounds starts (sizes before the
bytes are decoded or parsed), and its message states it in human units with
the setting that changes it (:data:`SETTINGS`).

| limit | default | ``carebridge inspect`` option |
|---|---|---|
| input size (a PDF, or any file) | 50 MiB | ``--max-input-size`` |
| plain-text size | 4 MiB | ``--max-text-size`` |
| pages | 500 | ``--max-pages`` |
| bytes decoded from content streams | 64 MiB | ``--max-decoded-size`` |
| memory of the parsing child | 1 GiB | ``--max-memory`` |
| wall time of the parsing child | 20 s | ``--timeout`` |
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from .errors import LimitExceeded

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
# Each limit's field -> the command-line option that changes it (named in every message).
SETTINGS = MappingProxyType({
    "max_input_bytes": "--max-input-size",
    "max_pages": "--max-pages",
    "max_decompressed_bytes": "--max-decoded-size",
    "max_memory_bytes": "--max-memory",
    "timeout_seconds": "--timeout",
    "max_text_bytes": "--max-text-size",
})
_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


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

    def exceeded(self, field: str, what: str) -> LimitExceeded:
        """The error for *what* going over the limit *field*, in human units, naming its setting.

        ``limits.exceeded("max_input_bytes", "the PDF is larger than")`` reads
        "the PDF is larger than the limit of 50 MiB (--max-input-size)".
        """
        value = getattr(self, field)
        if field == "timeout_seconds":
            shown = f"{value:g} s"
        elif field == "max_pages":
            shown = f"{value} pages"
        else:
            shown = human_size(value)
        return LimitExceeded(f"{what} the limit of {shown} ({SETTINGS[field]})")

    def check_size(self, size: int, field: str, what: str) -> None:
        """Raise :meth:`exceeded` when *size* bytes go over the limit *field*; before any work."""
        if size > getattr(self, field):
            raise self.exceeded(field, f"{what} is larger than")


def human_size(size: float) -> str:
    """*size* bytes in the largest binary unit it fills: ``50 MiB``, ``1.5 KiB``, ``1000 bytes``."""
    for unit, scale in _UNITS:
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size:g} bytes"


def parse_size(text: str) -> int:
    """A size given on the command line: ``4MiB``, ``512 KiB``, ``1GiB`` or plain bytes.

    Raises ValueError naming the accepted forms.
    """
    cleaned = text.strip().replace(" ", "")
    for unit, scale in _UNITS + (("bytes", 1), ("B", 1)):
        if cleaned.lower().endswith(unit.lower()):
            number, factor = cleaned[: -len(unit)], scale
            break
    else:
        number, factor = cleaned, 1
    try:
        value = float(number) * factor
    except ValueError:
        raise ValueError(f"not a size: {text!r} (write e.g. 4MiB, 512KiB or 1000)") from None
    if not 0 < value < 1 << 62:
        raise ValueError(f"a size must be positive: {text!r}")
    return int(value)
