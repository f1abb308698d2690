"""Audit bundles: an export of the access log that a compliance officer verifies offline.

Format (version 1)
==================

Step 6 of verification (a range is complete) came after the first bundles
of this version; the bytes did not change. A seq range written before it
verifies as before; a time range written before it has no boundary entries
and now fails as incomplete: export it again.

A bundle is a ZIP file. Its members are stored or deflated, never
encrypted, each name appears once, and there are exactly these four:

1. ``bundle.json``: canonical JSON (:mod:`carebridge.crypto.canonical`) with
   exactly the keys

   - ``version``: 1;
   - ``origin``: the log's origin line;
   - ``verifier_key``: the log's C2SP verifier key ``<name>+<8 hex>+<base64>``;
   - ``checkpoint_size``: the tree size of the checkpoint;
   - ``full``: true if the entries are exactly ``0 .. checkpoint_size - 1``;
   - ``filters``: the selection a partial bundle was asked for (``start``,
     ``end``: integers, ``end`` exclusive; ``since``, ``until``, ``org``,
     ``document``, ``actor``, ``action``, ``outcome``: strings); ``{}`` when full;
   - ``consistency``: null, or (partial bundles only) ``{"old_size": M,
     "proof": [base64 hash, ...]}``: the RFC 9162 consistency proof from the
     tree of size M to the checkpoint's.

2. ``checkpoint``: the signed note (c2sp.org/tlog-checkpoint) of the log at
   ``checkpoint_size``, for ``origin``, signed by ``verifier_key``.
3. ``entries.jsonl``: log entries in increasing ``seq`` order, each the exact
   bytes that were hashed (leaf hash = SHA-256(0x00 || line)) and a newline.
4. Full bundles: ``leaves.bin``, the 32-byte leaf hashes of entries
   ``0 .. checkpoint_size - 1``, concatenated. Partial bundles:
   ``proofs.jsonl``, one canonical JSON line per entry, in the same order,
   ``{"proof": [base64 hash, ...], "seq": n}``: the inclusion proof of leaf
   ``n`` in the checkpoint's tree.

Partial bundles are of two sorts, told apart by their filters:

- a **range**: no content filter (only ``start``, ``end``, ``since``,
  ``until``). Its entries are every entry with ``start <= seq < end`` (``end``
  capped at ``checkpoint_size``) and ``since <= time < until``, one run of
  consecutive ``seq`` values; with ``since``, the run also starts with the
  entry just before the window (its time is before ``since``) unless the
  window starts at ``start``; with ``until``, it also ends with the entry
  just after the window (its time is at or after ``until``) unless the window
  runs to ``end``. Log times never decrease along ``seq``, so these boundary
  entries show the window ends where the run says. Times are RFC 3339 with
  a zone; ``until`` is later than ``since``.
- a **selection**: at least one of ``org``, ``document``, ``actor``,
  ``action``, ``outcome``. Its entries are the matching ones, in order.

Verification (:func:`verify_bundle`)
====================================

1. Structure: the members above, each within its size limit; ``bundle.json``
   parses.
2. Key: the officer's pinned verifier key if given (the bundle must name the
   same key), else the bundle's own. The checkpoint must verify with it, be
   for the bundle's origin and of ``checkpoint_size``.
3. ``previous`` (a checkpoint the officer kept from before) must verify with
   the same key and origin and be no larger than the bundle's.
4. Full bundles, in one pass over ``leaves.bin`` and ``entries.jsonl``: the
   root of the leaves is the checkpoint's root; the root of the first
   ``previous.size`` leaves is the previous checkpoint's (else the log forked
   or rewrote history); every entry hashes to its leaf and its ``seq`` is its
   position; there are exactly ``checkpoint_size`` entries.
5. Partial bundles: the consistency proof leads from ``previous`` to the
   checkpoint (else a fork); entries' ``seq`` values increase, lie inside
   the tree and the ``start``/``end`` filters; each entry's inclusion proof
   is for its ``seq`` and leads to the checkpoint's root. In a selection,
   each entry matches every filter (a time inside the window).
6. Ranges, besides: the ``seq`` values follow each other without a gap; the
   run starts at ``start`` (default 0) or with one entry before ``since``,
   and ends at ``end - 1`` (capped as above) or with one entry at or after
   ``until``; every other entry is inside the window, and times never
   decrease (else the range cannot be proven complete: ``INCONCLUSIVE``).
   So a range bundle proves no entry of its range was left out, added,
   repeated or moved. A selection proves each entry is in the log; that
   none is missing rests on the server, and the verdict says so.

The filters are what the bundle *claims*; the verdict names the range it
proved, for the officer to compare with the range asked for.

An entry's ``seq`` is its top-level ``"seq"`` member. It is read without
parsing the line when the line starts with ``{`` and has no other ``{`` (so
no nested object can hold a key) and holds ``,"seq":`` exactly once,
followed by a decimal and ``,`` or ``}``. In JSON a ``"`` inside a string is
always escaped, so a quote right after a comma opens a string outside any
other, and a string followed by a colon is a key: in a valid JSON line,
``,"seq":`` is the top-level key ``seq`` and nothing else. Any other line is
parsed as JSON (duplicate keys refused). Entries are not otherwise parsed:
verification proves they are the bytes the log signed, not what they say.

Failures are a :class:`Verdict` with ``ok`` false, a failure class
(``MALFORMED``, ``UNTRUSTED``, ``TAMPERED``, ``FORK``, ``INCONCLUSIVE``) and,
where one entry is to blame, the first bad ``seq``. Nothing about the
bundle raises.
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass
from typing import IO, Any

from carebridge.crypto import merkle
from carebridge.crypto._audit_format import (
    BUNDLE_VERSION,
    CHECKPOINT,
    ENTRIES,
    FILTER_KEYS,
    FORK,
    HEADER,
    INCONCLUSIVE,
    LEAVES,
    MALFORMED,
    MAX_ENTRY_SIZE,
    MAX_FILTER_LENGTH,
    MAX_HEADER_SIZE,
    MAX_PROOF_LINE_SIZE,
    PROOFS,
    TAMPERED,
    UNTRUSTED,
    ZIP_ERRORS,
    BundleHeader,
    BundleWriter,
    Consistency,
)
from carebridge.crypto._audit_range import RangeCheck, SelectionCheck, is_range
from carebridge.crypto._audit_read import (
    Leaves,
    check_batch,
    check_sizes,
    entry_seq,
    iter_lines,
    line_batches,
    members,
    parse_proof_line,
    read_small,
)
from carebridge.crypto.errors import AuditBundleError, NoteError, ProofError
from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.note import MAX_NOTE_SIZE, Checkpoint, Verifier, open_checkpoint
from carebridge.crypto.signing import VerifyKey

__all__ = [
    "BUNDLE_VERSION",
    "CHECKPOINT",
    "ENTRIES",
    "FILTER_KEYS",
    "FORK",
    "HEADER",
    "INCONCLUSIVE",
    "LEAVES",
    "MALFORMED",
    "MAX_ENTRY_SIZE",
    "MAX_FILTER_LENGTH",
    "MAX_HEADER_SIZE",
    "MAX_PROOF_LINE_SIZE",
    "PROOFS",
    "TAMPERED",
    "UNTRUSTED",
    "BundleHeader",
    "BundleWriter",
    "Consistency",
    "Verdict",
    "entry_seq",
    "is_range",
    "verify_bundle",
]

@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`verify_bundle` found. ``message`` is one line, without "OK"/"FAILED".

    ``kind`` is None when ``ok``, else one of the failure classes;
    ``first_bad_seq`` names the first entry to blame, when there is one;
    ``entries_checked`` counts the entries verified (before the first bad one).
    """

    ok: bool
    message: str
    kind: str | None = None
    first_bad_seq: int | None = None
    checkpoint_size: int | None = None
    entries_checked: int = 0
    full: bool | None = None
    origin: str | None = None
    key: str | None = None  # <name>+<key ID> of the verifier key
    verifier_key: str | None = None  # the whole verifier key, as --key takes it
    key_fingerprint: str | None = None
    key_pinned: bool = False
    previous_size: int | None = None
    complete: bool | None = None  # proven to hold every entry it claims (full or range); None if not ok
    filters: dict[str, str | int] | None = None  # what the bundle claims to hold (see the module doc)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_bundle(file: IO[bytes], *, previous: bytes | None = None,
                  verifier_key: str | None = None) -> Verdict:  # fmt: skip
    """Verify the bundle in the seekable binary ``file`` (see the module doc).

    ``previous`` is an older signed checkpoint the officer kept;
    ``verifier_key`` the log's key as the officer knows it (pinned). Returns a
    :class:`Verdict`; only I/O errors of ``file`` itself (:class:`OSError`)
    are raised.
    """
    run = _Verification(pinned=verifier_key is not None)
    try:
        try:
            run.verify(file, previous, verifier_key)
        except ZIP_ERRORS as exc:
            raise AuditBundleError(f"not a readable ZIP file ({type(exc).__name__}: {exc})") from None
    except AuditBundleError as exc:
        return run.verdict(exc)
    return run.verdict(None)


class _Verification:
    """One run of :func:`verify_bundle`: what is known so far goes into the verdict."""

    def __init__(self, *, pinned: bool) -> None:
        self.pinned = pinned
        self.checkpoint: Checkpoint | None = None
        self.header: BundleHeader | None = None
        self.verifier: Verifier | None = None
        self.previous: Checkpoint | None = None
        self.range: RangeCheck | None = None
        self.checked = 0

    def verify(self, file: IO[bytes], previous: bytes | None, pinned_key: str | None) -> None:
        with zipfile.ZipFile(file) as zf:
            infos = members(zf)  # step 1
            self.header = header = BundleHeader.parse(read_small(zf, infos[HEADER], MAX_HEADER_SIZE))
            tail = LEAVES if header.full else PROOFS
            if tail not in infos:
                raise AuditBundleError(f"a {'full' if header.full else 'partial'} bundle needs {tail}")
            check_sizes(header, infos)
            self.verifier = verifier = _choose_key(header, pinned_key)  # step 2
            self.checkpoint = checkpoint = _open(
                read_small(zf, infos[CHECKPOINT], MAX_NOTE_SIZE), verifier, header.origin, "checkpoint")
            if checkpoint.size != header.checkpoint_size:
                raise AuditBundleError(f"bundle.json says size {header.checkpoint_size}, the signed "
                                       f"checkpoint is of size {checkpoint.size}", kind=TAMPERED)
            if previous is not None:  # step 3
                self.previous = _open(previous, verifier, header.origin, "previous checkpoint")
                if self.previous.size > checkpoint.size:
                    raise AuditBundleError(
                        f"the previous checkpoint (size {self.previous.size}) is newer than the bundle's "
                        f"(size {checkpoint.size}): nothing to compare", kind=INCONCLUSIVE)
            with zf.open(infos[ENTRIES]) as entries, zf.open(infos[tail]) as rest:
                if header.full:
                    self._full(entries, rest, checkpoint)  # step 4
                else:
                    self._check_consistency(header, checkpoint)  # step 5
                    self._partial(entries, rest, header, checkpoint)

    # -- step 4 --------------------------------------------------------------------

    def _full(self, entries: IO[bytes], leaves: IO[bytes], checkpoint: Checkpoint) -> None:
        size = checkpoint.size
        tree = Leaves(leaves, self.previous.size if self.previous else None)
        bad: AuditBundleError | None = None
        position = 0
        try:
            for lines, buf in line_batches(entries, max_line=MAX_ENTRY_SIZE, what=ENTRIES):
                if position + len(lines) > size:
                    bad = AuditBundleError(f"entries.jsonl has more than the checkpoint's {size} entries",
                                           kind=TAMPERED, seq=size)  # fmt: skip
                    lines = lines[: size - position]
                    buf = b"".join(line + b"\n" for line in lines)
                packed = tree.read(len(lines))
                bad = check_batch(lines, buf, packed, position) or bad
                if bad:
                    break
                position += len(lines)
        except AuditBundleError as exc:  # a line too long or without a newline
            bad = exc
        self.checked = bad.seq if bad and bad.seq is not None else position
        root, old_root = tree.finish()
        if root != checkpoint.root_hash:
            raise AuditBundleError("leaves.bin does not lead to the checkpoint's root hash "
                                   "(leaf hashes changed, cut or added)", kind=TAMPERED,
                                   seq=bad.seq if bad else None)  # fmt: skip
        self._check_old_root(old_root, checkpoint)
        if bad:
            raise bad
        if position < size:
            raise AuditBundleError(f"entries.jsonl is cut: {position} of {size} entries",
                                   kind=TAMPERED, seq=position)  # fmt: skip

    def _check_old_root(self, old_root: bytes | None, checkpoint: Checkpoint) -> None:
        if self.previous is None or old_root == self.previous.root_hash:
            return
        if self.previous.size == checkpoint.size:
            raise AuditBundleError(f"two different logs of size {self.previous.size}: the previous checkpoint "
                                   "and the bundle's have different root hashes (fork)", kind=FORK)
        raise AuditBundleError(f"history rewritten: the first {self.previous.size} entries differ from the "
                               f"previous checkpoint of size {self.previous.size} (fork)", kind=FORK)

    # -- step 5 --------------------------------------------------------------------

    def _partial(self, entries: IO[bytes], proofs: IO[bytes], header: BundleHeader,
                 checkpoint: Checkpoint) -> None:  # fmt: skip
        size, root = checkpoint.size, checkpoint.root_hash
        low, high = header.filters.get("start", 0), header.filters.get("end", size)
        claims = RangeCheck(header.filters, size) if is_range(header.filters) else SelectionCheck(header.filters)
        self.range = claims if isinstance(claims, RangeCheck) else None
        proof_lines = iter_lines(proofs, max_line=MAX_PROOF_LINE_SIZE, what=PROOFS)
        last = -1
        for line in iter_lines(entries, max_line=MAX_ENTRY_SIZE, what=ENTRIES):
            try:
                seq = entry_seq(line)
            except AuditBundleError as exc:
                after = f"the entry after entry {last}" if last >= 0 else "the first entry"
                raise AuditBundleError(f"{after}: {exc}", kind=TAMPERED) from None
            proof_line = next(proof_lines, None)
            if seq <= last:
                raise AuditBundleError(f"entry {seq} comes after entry {last} (repeated or out of order)",
                                       kind=TAMPERED, seq=seq)  # fmt: skip
            if not (low <= seq < high and seq < size):
                raise AuditBundleError(f"entry {seq} is outside the bundle's range "
                                       f"{low}..{min(high, size) - 1}", kind=TAMPERED, seq=seq)  # fmt: skip
            claims.expect(seq)  # a gap is named before its proofs are misaligned
            if proof_line is None:
                raise AuditBundleError(f"proofs.jsonl ends before entry {seq}", kind=TAMPERED, seq=seq)
            self._prove(seq, line, parse_proof_line(proof_line), size, root)
            claims.add(seq, line)
            last = seq
            self.checked += 1
        if next(proof_lines, None) is not None:
            raise AuditBundleError("proofs.jsonl has more lines than entries.jsonl", kind=TAMPERED)
        claims.finish()

    @staticmethod
    def _prove(seq: int, line: bytes, proof_line: tuple[int, tuple[bytes, ...]], size: int, root: bytes) -> None:
        proof_seq, proof = proof_line
        if proof_seq != seq:
            raise AuditBundleError(f"entry {seq} comes with the proof for entry {proof_seq}",
                                   kind=TAMPERED, seq=seq)  # fmt: skip
        try:
            merkle.verify_inclusion(merkle.leaf_hash(line), seq, size, proof, root)
        except ProofError as exc:
            raise AuditBundleError(f"entry {seq} is not in the log as it stands ({exc})",
                                   kind=TAMPERED, seq=seq) from None

    def _check_consistency(self, header: BundleHeader, checkpoint: Checkpoint) -> None:
        if self.previous is None:
            return
        old = self.previous
        if old.size == 0:
            if old.root_hash != merkle.EMPTY_ROOT:
                raise AuditBundleError("the previous checkpoint has size 0 but a root hash", kind=FORK)
            return
        proof = header.consistency
        if proof is None or proof.old_size != old.size:
            raise AuditBundleError(f"the bundle has no consistency proof from size {old.size}; "
                                   "export it again with that previous checkpoint", kind=INCONCLUSIVE)
        try:
            merkle.verify_consistency(old.size, checkpoint.size, proof.proof,
                                      old.root_hash, checkpoint.root_hash)  # fmt: skip
        except ProofError as exc:
            raise AuditBundleError(f"the log's history does not extend the previous checkpoint of size "
                                   f"{old.size}: fork or rewritten history ({exc})", kind=FORK) from None

    # -- the verdict ---------------------------------------------------------------------

    def verdict(self, failure: AuditBundleError | None) -> Verdict:
        key = fp = encoded = None
        if self.verifier is not None:
            key = f"{self.verifier.name}+{self.verifier.key_id:08x}"
            fp = fingerprint(VerifyKey(self.verifier.public_key))
            encoded = self.verifier.encode()
        size = self.checkpoint.size if self.checkpoint else None
        common: dict[str, Any] = {
            "checkpoint_size": size, "entries_checked": self.checked, "key": key, "verifier_key": encoded,
            "key_fingerprint": fp, "key_pinned": self.pinned,
            "full": self.header.full if self.header else None,
            "origin": self.header.origin if self.header else None,
            "previous_size": self.previous.size if self.previous else None,
            "filters": dict(self.header.filters) if self.header else None,
        }  # fmt: skip
        if failure is not None:
            return Verdict(ok=False, message=str(failure), kind=failure.kind,
                           first_bad_seq=failure.seq, **common)  # fmt: skip
        common["complete"] = bool(self.header and (self.header.full or self.range is not None))
        noun = "entry" if self.checked == 1 else "entries"
        message = f"{self.checked} {noun} verified against checkpoint of size {size} by {key} ({fp})"
        if self.range is not None:
            message += f"; {self.range.describe()}"
        elif self.header is not None and not self.header.full:
            message += ("; a filtered selection: each entry proven in the log and matching the filters, "
                        "not that none is missing")
        if self.previous is not None:
            message += f"; consistent with the previous checkpoint of size {self.previous.size}"
        if not self.pinned:
            message += "; key from the bundle, not pinned"
        return Verdict(ok=True, message=message, **common)


def _choose_key(header: BundleHeader, pinned: str | None) -> Verifier:
    own = Verifier.parse(header.verifier_key)  # checked by BundleHeader
    if pinned is None:
        return own
    try:
        key = Verifier.parse(pinned)
    except NoteError as exc:
        raise AuditBundleError(f"the pinned verifier key is malformed: {exc}") from None
    if key != own:
        raise AuditBundleError(f"the bundle names the key {own.name}+{own.key_id:08x}, not the pinned key "
                               f"{key.name}+{key.key_id:08x}", kind=UNTRUSTED)  # fmt: skip
    return key


def _open(note: bytes, verifier: Verifier, origin: str, what: str) -> Checkpoint:
    if not isinstance(note, bytes) or len(note) > MAX_NOTE_SIZE:
        raise AuditBundleError(f"{what} is not a signed note of at most {MAX_NOTE_SIZE} bytes", kind=UNTRUSTED)
    try:
        return open_checkpoint(note, verifier, origin=origin)
    except NoteError as exc:
        key = f"{verifier.name}+{verifier.key_id:08x}"
        raise AuditBundleError(f"{what} is not a checkpoint of {origin!r} signed by {key}: {exc}",
                               kind=UNTRUSTED) from None
