"""The redaction gate as a step of ``send``: the file to encrypt, and the overrides to sign.

The gate itself (sanitize, scan, decide) is :mod:`.redaction`; this step
reads the file within the gate's input limit, runs it, writes the sanitized
copy for encryption and turns an override into the manifest's records.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ...crypto.manifest import Override
from . import redaction
from .errors import TransferError

MAX_SHOWN_FINDINGS = 5  # in the one-line error; `carebridge inspect` lists them all


async def clear(path: Path, work: Path, *, allow: tuple[str, ...], reason: str | None, allow_text: bool,
                unsafe_skip: bool) -> tuple[Path, tuple[Override, ...]]:
    """Run the redaction gate on *path*: sanitize and scan before anything is encrypted.

    Returns the file to encrypt (the sanitized copy, in *work*) and the
    overrides for the manifest. Raises TransferError with the blocking
    findings (page, rule, masked snippet) or why the file cannot be checked.
    *unsafe_skip* returns *path* unchecked (tests of the transport only).
    """
    if unsafe_skip:
        return path, ()
    data = await asyncio.to_thread(_read_limited, path, redaction.Limits().max_input_bytes)
    try:
        inspection = await asyncio.to_thread(redaction.inspect_document, data, allow_text=allow_text)
        result = redaction.gate(inspection, allow=allow, reason=reason)
    except redaction.RedactionBlocked as exc:
        shown = "; ".join(f"{_page(f.page)} {f.rule} {f.snippet}" for f in exc.blocking[:MAX_SHOWN_FINDINGS])
        more = len(exc.blocking) - MAX_SHOWN_FINDINGS
        raise TransferError(f"redaction check: {len(exc.blocking)} finding(s) block the send: "
                            f"{shown}{f'; and {more} more' if more > 0 else ''} (see `carebridge inspect`; "
                            "override named rules with --allow RULE --reason TEXT)") from None
    except redaction.RedactionError as exc:
        raise TransferError(f"redaction check: {exc}") from None
    cleared = work / "cleared"
    cleared.write_bytes(result.content)
    waived = result.override
    overrides = tuple(Override(rule, waived.reason) for rule in waived.rules) if waived else ()
    return cleared, overrides


def _page(page: int | None) -> str:
    return "text" if page is None else f"page {page}"


def _read_limited(path: Path, limit: int) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TransferError(f"{path.name}: larger than the redaction check's limit of {limit} bytes")
    return data
