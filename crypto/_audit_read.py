"""Reading an audit bundle's members: lines, entry seqs, leaf hashes. See :mod:`.audit_bundle`."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from typing import IO, Any, Final

from carebridge.crypto import merkle
from carebridge.crypto._audit_format import (
    CHECKPOINT,
    ENTRIES,
    HEADER,
    LEAVES,
    MAX_ENTRY_SIZE,
    MAX_PROOF_LINE_SIZE,
    PROOFS,
    TAMPERED,
    BundleHeader,
    parse_hashes,
)
from carebridge.crypto.canonical import parse_canonical_json
from carebridge.crypto.errors import AuditBundleError, CanonicalJSONError

# Bytes read from a member at a time: big enough that per-read costs vanish.
READ_CHUNK: Final = 1 << 20
_COMPRESSIONS: Final = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

_SEQ_MEMBER = re.compile(rb',"seq":(0|[1-9][0-9]{0,18})[,}]')
# One match per line (each runs to its line's end), so the i-th seq is line i's.
_SEQ_LINES = re.compile(rb',"seq":(0|[1-9][0-9]{0,18})[,}][^\n]*\n')


# -- entries ------------------------------------------------------------------------


def entry_seq(line: bytes) -> int:
    """Return the top-level ``seq`` of an entry line (no newline); see the module doc.

    Raises :class:`AuditBundleError` if the line is not a JSON object with an
    integer ``seq``.
    """
    if line[:1] == b"{" and line.count(b"{") == 1 and line.count(b',"seq":') == 1:
        found = _SEQ_MEMBER.search(line)
        if found:
            return int(found[1])
    try:
        value = json.loads(line, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        raise AuditBundleError("entry is not a JSON object", kind=TAMPERED) from None
    seq = value.get("seq") if isinstance(value, dict) else None
    if type(seq) is not int or seq < 0:
        raise AuditBundleError("entry has no integer seq", kind=TAMPERED)
    return seq


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _fast_seqs(lines: list[bytes], buf: bytes, first: int) -> bool:
    """Report whether all ``lines`` (``buf``) have the flat form and seqs ``first, first+1, …``.

    Every line starts with ``{`` and there are as many as lines, so each
    line has exactly one; likewise ``,"seq":``, found once on each line.
    """
    count = len(lines)
    if not (buf.count(b"{") == count and buf.count(b',"seq":') == count
            and all([line[:1] == b"{" for line in lines])):  # noqa: C419 (a list is faster when all pass)
        return False
    found = _SEQ_LINES.findall(buf)
    return len(found) == count and list(map(int, found)) == list(range(first, first + count))


def check_batch(lines: list[bytes], buf: bytes, packed: bytes, first: int) -> AuditBundleError | None:
    """Check a batch of entries at positions ``first…`` against their leaf hashes."""
    hashes = merkle.packed_leaf_hashes(lines)
    if hashes == packed and _fast_seqs(lines, buf, first):
        return None
    size = merkle.HASH_SIZE
    for i, line in enumerate(lines):  # the slow way, to name the first bad entry
        seq = first + i
        if hashes[i * size : (i + 1) * size] != packed[i * size : (i + 1) * size]:
            return AuditBundleError(f"entry {seq} does not match leaf {seq} of the log "
                                    "(changed, inserted, deleted or moved)", kind=TAMPERED, seq=seq)  # fmt: skip
        try:
            found = entry_seq(line)
        except AuditBundleError as exc:
            return AuditBundleError(f"entry {seq}: {exc}", kind=TAMPERED, seq=seq)
        if found != seq:
            return AuditBundleError(f"entry {seq} says it is seq {found}", kind=TAMPERED, seq=seq)
    return None


def line_batches(stream: IO[bytes], *, max_line: int, what: str) -> Iterator[tuple[list[bytes], bytes]]:
    """Yield each chunk's complete lines (without newlines) and their bytes (with them).

    Raises :class:`AuditBundleError` for a line longer than ``max_line`` or a
    last line without a newline; ``seq`` is then the line's position.
    """
    carry, position = b"", 0
    while chunk := stream.read(READ_CHUNK):
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        buf, carry = data[:cut], data[cut:]
        if len(carry) > max_line:
            index = position + buf.count(b"\n")
            raise AuditBundleError(f"{what} line {index} is longer than {max_line} bytes",
                                   kind=TAMPERED, seq=index)  # fmt: skip
        if not buf:
            continue
        lines = buf[:-1].split(b"\n")
        if max(map(len, lines)) > max_line:
            index = next(i for i, line in enumerate(lines) if len(line) > max_line)
            raise AuditBundleError(f"{what} line {position + index} is longer than {max_line} bytes",
                                   kind=TAMPERED, seq=position + index)  # fmt: skip
        position += len(lines)
        yield lines, buf
    if carry:
        raise AuditBundleError(f"{what} does not end in a newline", kind=TAMPERED, seq=position)


def iter_lines(stream: IO[bytes], *, max_line: int, what: str) -> Iterator[bytes]:
    for lines, _ in line_batches(stream, max_line=max_line, what=what):
        yield from lines


# -- members ------------------------------------------------------------------------


class Leaves:
    """``leaves.bin`` read once: hands out leaf hashes and folds them into the roots."""

    def __init__(self, stream: IO[bytes], old_size: int | None) -> None:
        self._stream = stream
        self._builder = merkle.RootBuilder()
        self._old_size = old_size
        self.old_root = merkle.EMPTY_ROOT if old_size == 0 else None

    def read(self, count: int) -> bytes:
        packed = self._stream.read(count * merkle.HASH_SIZE)
        if len(packed) != count * merkle.HASH_SIZE:  # the size was checked: a lying archive
            raise AuditBundleError("leaves.bin is shorter than its directory entry says")
        self._add(packed)
        return packed

    def finish(self) -> tuple[bytes, bytes | None]:
        """Fold in the leaves not read yet; return (root, root at the old size)."""
        while chunk := self._stream.read(READ_CHUNK):
            self._add(chunk)
        return self._builder.root(), self.old_root

    def _add(self, packed: bytes) -> None:
        start = self._builder.size
        if self._old_size and start < self._old_size <= start + len(packed) // merkle.HASH_SIZE:
            cut = (self._old_size - start) * merkle.HASH_SIZE
            self._builder.add(packed[:cut])
            self.old_root = self._builder.root()
            packed = packed[cut:]
        self._builder.add(packed)


def parse_proof_line(line: bytes) -> tuple[int, tuple[bytes, ...]]:
    try:
        value = parse_canonical_json(line, max_size=MAX_PROOF_LINE_SIZE)
    except CanonicalJSONError as exc:
        raise AuditBundleError(f"proofs.jsonl: {exc}") from None
    if not isinstance(value, dict) or set(value) != {"proof", "seq"} or type(value["seq"]) is not int:
        raise AuditBundleError('proofs.jsonl: a line is not {"proof": [...], "seq": n}')
    return value["seq"], parse_hashes(value["proof"], "proofs.jsonl")


def members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if name not in (HEADER, CHECKPOINT, ENTRIES, LEAVES, PROOFS):
            raise AuditBundleError(f"unexpected member {name[:80]!r} in the bundle")
        if name in infos:
            raise AuditBundleError(f"the bundle holds {name} twice")
        if info.flag_bits & 0x1 or info.compress_type not in _COMPRESSIONS:
            raise AuditBundleError(f"{name} is encrypted or compressed in an unsupported way")
        infos[name] = info
    for name in (HEADER, CHECKPOINT, ENTRIES):
        if name not in infos:
            raise AuditBundleError(f"the bundle has no {name}")
    if LEAVES in infos and PROOFS in infos:
        raise AuditBundleError(f"the bundle holds both {LEAVES} and {PROOFS}")
    return infos


def check_sizes(header: BundleHeader, infos: dict[str, zipfile.ZipInfo]) -> None:
    """Refuse members larger than the checkpoint allows, before reading them (huge members)."""
    size = header.checkpoint_size
    limits = {ENTRIES: size * (MAX_ENTRY_SIZE + 1), PROOFS: size * (MAX_PROOF_LINE_SIZE + 1)}
    for name, limit in limits.items():
        if name in infos and infos[name].file_size > limit:
            raise AuditBundleError(f"{name} is larger than a log of {size} entries can be")
    if header.full and infos[LEAVES].file_size != size * merkle.HASH_SIZE:
        have = infos[LEAVES].file_size
        raise AuditBundleError(f"leaves.bin is cut or padded: {have} bytes, {have / merkle.HASH_SIZE:g} leaf "
                               f"hashes for a checkpoint of size {size}", kind=TAMPERED)  # fmt: skip


def read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise AuditBundleError(f"{info.filename} is larger than {limit} bytes")
    with zf.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise AuditBundleError(f"{info.filename} is larger than {limit} bytes")
    return data
