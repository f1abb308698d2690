"""C2SP tlog proofs (https://c2sp.org/tlog-proof): offline proof that an entry is logged.

A proof is text, lines ending in U+000A::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>          (optional, not authenticated)
    index <leaf index>
    <base64 hash>                       (zero or more: the RFC 6962 inclusion
    …                                    proof, from the leaf's sibling up)
    <blank line>
    <signed checkpoint note, verbatim>

1. The first line is exactly ``c2sp.org/tlog-proof@v1``.
2. An optional ``extra`` line carries non-empty canonical base64; callers
   must not trust it, as no signature covers it.
3. The index is a decimal with no leading zeros.
4. Each hash line is the canonical base64 of a 32-byte hash; at most
   ``MAX_INCLUSION_PROOF_HASHES`` of them.
5. After the blank line comes the checkpoint (c2sp.org/tlog-checkpoint)
   signed by the log, as a signed note.

Verifying opens the checkpoint with the log's key, checks its origin, then
checks the inclusion proof of the leaf hash against the checkpoint's root.
Malformed text raises :class:`~carebridge.crypto.errors.NoteError`; a proof
that does not verify raises :class:`~carebridge.crypto.errors.ProofError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from carebridge.crypto.errors import NoteError
from carebridge.crypto.merkle import (
    HASH_SIZE,
    MAX_INCLUSION_PROOF_HASHES,
    MAX_TREE_SIZE,
    verify_inclusion,
)
from carebridge.crypto.note import (
    MAX_NOTE_SIZE,
    Checkpoint,
    Verifier,
    _decode_base64,
    _encode_base64,
    open_checkpoint,
)

__all__ = [
    "MAX_EXTRA_SIZE",
    "MAX_TLOG_PROOF_SIZE",
    "TLOG_PROOF_HEADER",
    "TlogProof",
    "parse_tlog_proof",
    "verify_tlog_proof",
]

TLOG_PROOF_HEADER: Final = "c2sp.org/tlog-proof@v1"
# Extra data is application context (an id, a VRF proof), never a payload.
MAX_EXTRA_SIZE: Final = 4096
# The checkpoint note plus the header lines: 4 base64 characters per 3 bytes
# of extra data, an index, and up to 63 hash lines of 45 bytes.
MAX_TLOG_PROOF_SIZE: Final = MAX_NOTE_SIZE + MAX_EXTRA_SIZE * 4 // 3 + 4096

_INDEX = re.compile("index (0|[1-9][0-9]{0,18})")


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed tlog proof; valid by construction (the checkpoint is checked on verify).

    Raises :class:`NoteError` naming the field that is malformed.
    """

    index: int
    hashes: tuple[bytes, ...]
    signed_checkpoint: bytes
    extra: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hashes", tuple(self.hashes))
        if type(self.index) is not int or not 0 <= self.index < MAX_TREE_SIZE:
            raise NoteError("tlog proof index out of range")
        if len(self.hashes) > MAX_INCLUSION_PROOF_HASHES:
            raise NoteError(f"tlog proof has more than {MAX_INCLUSION_PROOF_HASHES} hashes")
        if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in self.hashes):
            raise NoteError(f"tlog proof hash is not {HASH_SIZE} bytes")
        if not isinstance(self.extra, bytes) or len(self.extra) > MAX_EXTRA_SIZE:
            raise NoteError(f"tlog proof extra data is larger than {MAX_EXTRA_SIZE} bytes")
        if (
            not isinstance(self.signed_checkpoint, bytes)
            or len(self.signed_checkpoint) > MAX_NOTE_SIZE
        ):
            raise NoteError(f"tlog proof checkpoint is not a note of at most {MAX_NOTE_SIZE} bytes")
        if not self.signed_checkpoint.endswith(b"\n"):
            raise NoteError("tlog proof checkpoint does not end in a newline")

    def format(self) -> bytes:
        """Return the proof text (steps 1 to 5); omits the extra line when there is none."""
        lines = [TLOG_PROOF_HEADER]
        if self.extra:
            lines.append("extra " + _encode_base64(self.extra))
        lines.append(f"index {self.index}")
        lines.extend(_encode_base64(h) for h in self.hashes)
        return (
            "".join(f"{line}\n" for line in lines).encode("ascii") + b"\n" + self.signed_checkpoint
        )


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse tlog proof text; raises :class:`NoteError` naming the malformed line.

    The embedded checkpoint is only checked by :func:`verify_tlog_proof`.
    """
    if len(data) > MAX_TLOG_PROOF_SIZE:
        raise NoteError(f"tlog proof is larger than {MAX_TLOG_PROOF_SIZE} bytes")
    # Proof lines are never empty, so the first blank line ends them.
    head, blank, signed_checkpoint = data.partition(b"\n\n")
    if not blank:
        raise NoteError("tlog proof has no blank line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise NoteError("tlog proof header lines are not ASCII") from None
    if lines[0] != TLOG_PROOF_HEADER:
        raise NoteError(f"tlog proof does not start with {TLOG_PROOF_HEADER!r}")
    position = 1
    extra = b""
    if len(lines) > 1 and lines[1].startswith("extra "):
        decoded = _decode_base64(lines[1][len("extra ") :])
        if not decoded:
            raise NoteError("tlog proof extra line is not non-empty canonical base64")
        extra, position = decoded, 2
    match = _INDEX.fullmatch(lines[position]) if position < len(lines) else None
    if match is None:
        raise NoteError("tlog proof index line is not 'index' and a decimal without leading zeros")
    hashes = [_parse_hash(line) for line in lines[position + 1 :]]
    return TlogProof(
        index=int(match[1]), hashes=tuple(hashes), signed_checkpoint=signed_checkpoint, extra=extra
    )


def _parse_hash(line: str) -> bytes:
    raw = _decode_base64(line)
    if raw is None or len(raw) != HASH_SIZE:
        raise NoteError(f"tlog proof hash line is not canonical base64 of {HASH_SIZE} bytes")
    return raw


def verify_tlog_proof(
    proof: TlogProof, *, leaf_hash: bytes, verifier: Verifier, origin: str
) -> Checkpoint:
    """Check that ``proof`` shows ``leaf_hash`` logged by ``verifier``'s log ``origin``.

    Returns the verified checkpoint. Raises :class:`NoteError` if the
    checkpoint is malformed, not signed by ``verifier`` or for another
    origin, and :class:`~carebridge.crypto.errors.ProofError` if the
    inclusion proof does not lead to its root.
    """
    # The checkpoint's text means nothing until its signature verifies.
    checkpoint = open_checkpoint(proof.signed_checkpoint, verifier, origin=origin)
    verify_inclusion(leaf_hash, proof.index, checkpoint.size, proof.hashes, checkpoint.root_hash)
    return checkpoint
