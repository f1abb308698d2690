"""The audit bundle's members, header and writer; the format is in :mod:`.audit_bundle`."""

from __future__ import annotations

import base64
import binascii
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final, Self

from carebridge.crypto import merkle
from carebridge.crypto.canonical import canonical_json, parse_canonical_json
from carebridge.crypto.errors import AuditBundleError, CanonicalJSONError, NoteError
from carebridge.crypto.note import Verifier, open_checkpoint

BUNDLE_VERSION: Final = 1
HEADER, CHECKPOINT, ENTRIES, LEAVES, PROOFS = (
    "bundle.json", "checkpoint", "entries.jsonl", "leaves.bin", "proofs.jsonl")  # fmt: skip

# Failure classes, from "not a bundle" to "the log lied".
MALFORMED: Final = "malformed"  # not a bundle: structure, limits, syntax
UNTRUSTED: Final = "untrusted"  # checkpoint not signed by the key, or another key or origin
TAMPERED: Final = "tampered"  # entries, leaves or proofs do not match the signed checkpoint
FORK: Final = "fork"  # the history does not extend the previous checkpoint
INCONCLUSIVE: Final = "inconclusive"  # the bundle cannot answer the question asked

# bundle.json: a header, a filter set and at most 64 consistency proof hashes.
MAX_HEADER_SIZE: Final = 64 * 1024
# A log entry is ten short fields (the ledger caps each at 64 characters);
# this leaves room for every character escaped and then some.
MAX_ENTRY_SIZE: Final = 16 * 1024
# {"proof":[...63 hashes of 44 base64 characters, quoted...],"seq":n}.
MAX_PROOF_LINE_SIZE: Final = 4 * 1024
# A filter value is an id, a code or an RFC 3339 time.
MAX_FILTER_LENGTH: Final = 256
# Leaf hashes are random bytes: deflating them gains nothing.
_COMPRESSION: Final = {ENTRIES: zipfile.ZIP_DEFLATED, LEAVES: zipfile.ZIP_STORED, PROOFS: zipfile.ZIP_DEFLATED}
# Zip times are not part of the format; fixed, so one export gives one file.
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)

FILTER_KEYS: Final = {"start": int, "end": int, "since": str, "until": str, "org": str,
                      "document": str, "actor": str, "action": str, "outcome": str}  # fmt: skip
_HEADER_KEYS: Final = frozenset(
    {"version", "origin", "verifier_key", "checkpoint_size", "full", "filters", "consistency"})  # fmt: skip
# Errors zipfile and zlib raise for damaged or hostile archives.
ZIP_ERRORS: Final = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
                     RuntimeError, ValueError, OverflowError, UnicodeDecodeError)  # fmt: skip


# -- the header -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Consistency:
    """A consistency proof from the tree of ``old_size`` leaves to the checkpoint's."""

    old_size: int
    proof: tuple[bytes, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "proof", tuple(self.proof))
        if type(self.old_size) is not int or not 1 <= self.old_size <= merkle.MAX_TREE_SIZE:
            raise AuditBundleError("bundle.json: consistency old_size out of range")
        if len(self.proof) > merkle.MAX_CONSISTENCY_PROOF_HASHES or any(
            not isinstance(h, bytes) or len(h) != merkle.HASH_SIZE for h in self.proof
        ):
            raise AuditBundleError("bundle.json: consistency proof is not a list of 32-byte hashes")


@dataclass(frozen=True, slots=True)
class BundleHeader:
    """``bundle.json``, valid by construction; raises :class:`AuditBundleError` naming the field."""

    origin: str
    verifier_key: str
    checkpoint_size: int
    full: bool
    filters: Mapping[str, str | int] = field(default_factory=dict)
    consistency: Consistency | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", dict(self.filters))
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise AuditBundleError("bundle.json: origin is empty or not one line")
        if not isinstance(self.verifier_key, str):
            raise AuditBundleError("bundle.json: verifier_key is not a string")
        try:
            Verifier.parse(self.verifier_key)
        except NoteError as exc:
            raise AuditBundleError(f"bundle.json: verifier_key: {exc}") from None
        if type(self.checkpoint_size) is not int or not 0 <= self.checkpoint_size <= merkle.MAX_TREE_SIZE:
            raise AuditBundleError("bundle.json: checkpoint_size out of range")
        if type(self.full) is not bool:
            raise AuditBundleError("bundle.json: full is not true or false")
        for key, value in self.filters.items():
            kind = FILTER_KEYS.get(key)
            if kind is None:
                raise AuditBundleError(f"bundle.json: unknown filter {key!r}")
            if type(value) is not kind or (kind is int and value < 0):
                what = "a non-negative integer" if kind is int else "a string"
                raise AuditBundleError(f"bundle.json: filter {key!r} is not {what}")
            if kind is str and not 0 < len(value) <= MAX_FILTER_LENGTH:
                raise AuditBundleError(f"bundle.json: filter {key!r} is empty or too long")
        if self.full and (self.filters or self.consistency is not None):
            raise AuditBundleError("bundle.json: a full bundle has no filters and no consistency proof")
        if self.consistency is not None and not (
            isinstance(self.consistency, Consistency) and self.consistency.old_size <= self.checkpoint_size
        ):
            raise AuditBundleError("bundle.json: consistency proof from a larger tree")

    def encode(self) -> bytes:
        """Return ``bundle.json``'s bytes."""
        consistency = None
        if self.consistency is not None:
            consistency = {"old_size": self.consistency.old_size,
                           "proof": [_b64(h) for h in self.consistency.proof]}  # fmt: skip
        return canonical_json({
            "version": BUNDLE_VERSION, "origin": self.origin, "verifier_key": self.verifier_key,
            "checkpoint_size": self.checkpoint_size, "full": self.full, "filters": self.filters,
            "consistency": consistency,
        })  # fmt: skip

    @classmethod
    def parse(cls, data: bytes) -> BundleHeader:
        """Parse ``bundle.json``; raises :class:`AuditBundleError` naming the problem."""
        try:
            value = parse_canonical_json(data, max_size=MAX_HEADER_SIZE)
        except CanonicalJSONError as exc:
            raise AuditBundleError(f"bundle.json: {exc}") from None
        if not isinstance(value, dict):
            raise AuditBundleError("bundle.json is not a JSON object")
        unknown, missing = sorted(set(value) - _HEADER_KEYS), sorted(_HEADER_KEYS - set(value))
        if unknown:
            raise AuditBundleError(f"bundle.json: unknown key {unknown[0]!r}")
        if missing:
            raise AuditBundleError(f"bundle.json: missing {missing[0]!r}")
        if value["version"] != BUNDLE_VERSION or type(value["version"]) is not int:
            raise AuditBundleError(f"bundle.json: version is not {BUNDLE_VERSION}")
        if not isinstance(value["filters"], dict):
            raise AuditBundleError("bundle.json: filters is not an object")
        return cls(origin=value["origin"], verifier_key=value["verifier_key"],
                   checkpoint_size=value["checkpoint_size"], full=value["full"],
                   filters=value["filters"], consistency=_parse_consistency(value["consistency"]))  # fmt: skip


def _parse_consistency(value: Any) -> Consistency | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"old_size", "proof"}:
        raise AuditBundleError('bundle.json: consistency is not null or {"old_size", "proof"}')
    return Consistency(old_size=value["old_size"], proof=parse_hashes(value["proof"], "consistency proof"))


def parse_hashes(value: Any, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > merkle.MAX_CONSISTENCY_PROOF_HASHES:
        raise AuditBundleError(f"{what} is not a list of at most {merkle.MAX_CONSISTENCY_PROOF_HASHES} hashes")
    hashes = []
    for item in value:
        raw = _unb64(item) if isinstance(item, str) else None
        if raw is None or len(raw) != merkle.HASH_SIZE:
            raise AuditBundleError(f"{what}: a hash is not canonical base64 of {merkle.HASH_SIZE} bytes")
        hashes.append(raw)
    return tuple(hashes)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if _b64(raw) == text else None  # one value, one spelling


# -- writing ------------------------------------------------------------------------


class BundleWriter:
    """Writes a bundle to a binary file, member by member, in constant memory.

    ::

        with BundleWriter(out, header=header, checkpoint=note) as bundle:
            bundle.write_entries(chunk)        # JSONL bytes, any chunking
            bundle.write_leaves(chunk)         # full bundles: packed leaf hashes
            bundle.write_proof(seq, hashes)    # partial bundles: one per entry, in order

    All entries come before the leaves or proofs. Raises
    :class:`AuditBundleError` for a checkpoint that does not match the
    header, for calls out of order, and on close for counts that do not add
    up (a full bundle needs ``checkpoint_size`` entries and leaves).
    """

    def __init__(self, out: IO[bytes], *, header: BundleHeader, checkpoint: bytes) -> None:
        verifier = Verifier.parse(header.verifier_key)
        try:
            signed = open_checkpoint(checkpoint, verifier, origin=header.origin)
        except NoteError as exc:
            raise AuditBundleError(f"checkpoint: {exc}", kind=UNTRUSTED) from None
        if signed.size != header.checkpoint_size:
            raise AuditBundleError("checkpoint size does not match the header")
        self._header = header
        self._zip = zipfile.ZipFile(out, "w", allowZip64=True)
        self._zip.writestr(_info(HEADER), header.encode())
        self._zip.writestr(_info(CHECKPOINT), checkpoint)
        self._member: IO[bytes] | None = self._zip.open(_info(ENTRIES), "w", force_zip64=True)
        self._phase = ENTRIES
        self._entries = self._tail_count = 0
        self._last = b"\n"

    def write_entries(self, chunk: bytes) -> None:
        """Append raw JSONL bytes to ``entries.jsonl``."""
        self._expect(ENTRIES)
        if chunk:
            self._write(chunk)
            self._entries += chunk.count(b"\n")
            self._last = chunk[-1:]

    def write_leaves(self, chunk: bytes) -> None:
        """Append packed 32-byte leaf hashes to ``leaves.bin`` (full bundles)."""
        self._switch(LEAVES)
        self._write(chunk)
        self._tail_count += len(chunk)

    def write_proof(self, seq: int, proof: Sequence[bytes]) -> None:
        """Append the inclusion proof of entry ``seq`` to ``proofs.jsonl`` (partial bundles)."""
        self._switch(PROOFS)
        if any(not isinstance(h, bytes) or len(h) != merkle.HASH_SIZE for h in proof):
            raise AuditBundleError("inclusion proof hashes are 32 bytes")
        self._write(canonical_json({"proof": [_b64(h) for h in proof], "seq": seq}) + b"\n")
        self._tail_count += 1

    def close(self) -> None:
        """Finish the ZIP file; raises :class:`AuditBundleError` if the counts do not add up."""
        if self._phase == ENTRIES:
            self._switch(LEAVES if self._header.full else PROOFS)
        size = self._header.checkpoint_size
        if self._last != b"\n":
            problem = "entries.jsonl does not end in a newline"
        elif self._header.full and self._entries != size:
            problem = f"{self._entries} entries for a checkpoint of size {size}"
        elif self._header.full and self._tail_count != size * merkle.HASH_SIZE:
            problem = f"{self._tail_count} bytes of leaf hashes for a checkpoint of size {size}"
        elif not self._header.full and self._tail_count != self._entries:
            problem = f"{self._tail_count} inclusion proofs for {self._entries} entries"
        else:
            problem = None
        self._close_member()
        self._zip.close()
        if problem:
            raise AuditBundleError(f"incomplete bundle: {problem}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            self.close()
        else:  # the output is being discarded; just release it
            try:
                self._close_member()
                self._zip.close()
            except (*ZIP_ERRORS, OSError):
                pass

    def _expect(self, phase: str) -> None:
        if self._phase != phase:
            raise AuditBundleError(f"bundle member {phase} written out of order")

    def _switch(self, phase: str) -> None:
        if self._phase == phase:
            return
        self._expect(ENTRIES)
        if phase != (LEAVES if self._header.full else PROOFS):
            raise AuditBundleError(f"a {'full' if self._header.full else 'partial'} bundle has no {phase}")
        self._close_member()
        self._member = self._zip.open(_info(phase), "w", force_zip64=True)
        self._phase = phase

    def _write(self, data: bytes) -> None:
        if self._member is None:
            raise AuditBundleError("bundle is closed")
        self._member.write(data)

    def _close_member(self) -> None:
        if self._member is not None:
            member, self._member = self._member, None
            member.close()


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = _COMPRESSION.get(name, zipfile.ZIP_STORED)
    return info
