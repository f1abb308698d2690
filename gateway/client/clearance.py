"""The redaction gate as a step of ``send``: the file to encrypt, and the overrides to sign.

The gate itself (sanitize, scan, decide) is :mod:`.redaction`; this step
reads the file within the gate's input limit, runs it under the clinic's
redaction profile (:func:`clinic_profile`), writes the sanitized copy for
encryption and turns an override into the manifest's records.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from pathlib import Path

from ...crypto.errors import CryptoError
from ...crypto.manifest import Override
from ...crypto.signing import VerifyKey
from . import redaction
from .api import Client
from .errors import TransferError
from .redaction.profile import Profile, verify_signed_profile

MAX_SHOWN_FINDINGS = 5  # in the one-line error; `carebridge inspect` lists them all


async def clinic_profile(client: Client, me: dict) -> Profile | None:
    """Your clinic's current redaction profile, its signature checked; None when it has none.

    The gateway serves the signed profile; it must be signed for your
    organisation by the signer it names, under one of the keys that signer
    registered (as the directory lists them). Raises TransferError otherwise.
    """
    answer = await client.redaction_profile()
    if answer is None:
        return None
    try:
        keys = [VerifyKey.parse(k["verify_key"]) for k in await client.key_history(answer["signer_id"])]
        profile = verify_signed_profile(base64.b64decode(answer["document"], validate=True), keys,
                                        org_id=me["org_id"], signer_id=answer["signer_id"])
    except (redaction.RedactionError, CryptoError, KeyError, TypeError, binascii.Error) as exc:
        detail = str(exc) if isinstance(exc, redaction.RedactionError) else "malformed answer"
        raise TransferError(f"your clinic's redaction profile cannot be trusted: {detail}") from None
    if (profile.id, profile.version) != (answer.get("id"), answer.get("version")):
        raise TransferError("your clinic's redaction profile is not the one the gateway says it is")
    return profile


async def clear(path: Path, work: Path, *, allow: tuple[str, ...], reason: str | None, allow_text: bool,
                unsafe_skip: bool, profile: Profile | None = None) -> tuple[Path, tuple[Override, ...]]:
    """Run the redaction gate on *path*: sanitize and scan before anything is encrypted.

    Returns the file to encrypt (the sanitized copy, in *work*) and the
    overrides for the manifest. Raises TransferError with the blocking
    findings (page, rule, masked snippet) or why the file cannot be checked.
    *profile* (the clinic's) sets each rule to block, warn or off; None: every rule blocks.
    *unsafe_skip* returns *path* unchecked (tests of the transport only).
    """
    if unsafe_skip:
        return path, ()
    data = await asyncio.to_thread(_read_limited, path, redaction.Limits().max_input_bytes)
    try:
        inspection = await asyncio.to_thread(redaction.inspect_document, data, allow_text=allow_text)
        result = redaction.gate(inspection, allow=allow, reason=reason, profile=profile)
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
