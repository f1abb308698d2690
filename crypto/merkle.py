"""RFC 6962 / RFC 9162 Merkle tree math for the access log. Pure functions, no I/O.

Hashing (RFC 9162 section 2.1.1), SHA-256 throughout::

    leaf hash   = SHA-256(0x00 || entry)
    node hash   = SHA-256(0x01 || left || right)
    MTH({})     = SHA-256()                                (EMPTY_ROOT)
    MTH(D[n])   = node hash(MTH(D[0:k]), MTH(D[k:n]))     k = largest power of 2 < n

Stored hashes (the layout of golang.org/x/mod/sumdb/tlog). A ledger stores only
the roots of *perfect* subtrees: hash (level, n) covers the leaves
``[n * 2**level, (n + 1) * 2**level)``. Appending leaf ``n`` stores its leaf
hash and the root of every subtree that leaf completes
(:func:`stored_hashes_for_leaf`), at consecutive positions starting at
``stored_hash_index(0, n)``; so storage is append-only and a tree of ``size``
leaves holds ``stored_hash_count(size)`` hashes. Any root or proof needs at
most about ``2 * log2(size)`` of them, which :func:`tree_hash`,
:func:`prove_inclusion` and :func:`prove_consistency` fetch with a single
:meth:`HashReader.read_hashes` call (one database round trip).
:class:`RootBuilder` computes roots from a stream of leaf hashes (an export).

Proofs are lists of 32-byte hashes ordered from the leaf (or the smaller tree)
up to the root: RFC 9162 sections 2.1.3 (inclusion) and 2.1.4 (consistency),
the same bytes as RFC 6962 and C2SP tlog-proof. Verification computes the
exact proof length first, so a padded or truncated proof is named as such.

Conventions that the shared vectors (transparency-dev/merkle) fix:

* a consistency proof needs ``1 <= size1 <= size2``: from an empty tree it
  proves nothing, and equal sizes take an empty proof and equal roots;
* roots are compared, never parsed, so a root of the wrong length simply
  does not match; leaf hashes and proof hashes must be 32 bytes.

Every error is a :class:`~carebridge.crypto.errors.ProofError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, NoReturn, Protocol

from carebridge.crypto.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_CONSISTENCY_PROOF_HASHES",
    "MAX_INCLUSION_PROOF_HASHES",
    "MAX_TREE_SIZE",
    "ROOT_BLOCK_LEAVES",
    "HashReader",
    "MemoryTree",
    "RootBuilder",
    "leaf_hash",
    "node_hash",
    "packed_leaf_hashes",
    "prove_consistency",
    "prove_inclusion",
    "root_hash",
    "split_stored_hash_index",
    "stored_hash_count",
    "stored_hash_index",
    "stored_hashes_for_leaf",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
# Sizes and indexes are kept in signed 64-bit (BIGINT) columns.
MAX_TREE_SIZE: Final = (1 << 63) - 1
# One sibling per level under the root of a tree of fewer than 2**63 leaves.
MAX_INCLUSION_PROOF_HASHES: Final = 63
# An inclusion-length path plus the root of the subtree the two trees share.
MAX_CONSISTENCY_PROOF_HASHES: Final = 64
# RFC 9162: the hash of an empty tree is the hash of the empty string.
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

# RootBuilder hashes aligned blocks of this many leaves level by level: a
# power of two, so each block is a perfect subtree; 32 KiB of hashes at a time.
ROOT_BLOCK_LEAVES: Final = 1024

# Domain separation (RFC 9162 2.1.1): a leaf can never pass for an interior node.
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_sha256 = hashlib.sha256


class HashReader(Protocol):
    """Reads stored hashes, as a ledger's ``hashes`` table would."""

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the hashes stored at ``indexes``, in that order.

        Called at most once per root or proof, so a database reader should
        fetch them all in one query. Raise if any index is not stored.
        """
        ...


def leaf_hash(entry: bytes) -> bytes:
    """Return the RFC 6962 hash of a log entry: SHA-256(0x00 || entry)."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def packed_leaf_hashes(entries: Iterable[bytes]) -> bytes:
    """Return the leaf hashes of ``entries``, concatenated (32 bytes each)."""
    # A loop without a call per entry: exports hash millions of them.
    return b"".join([_sha256(_LEAF_PREFIX + entry).digest() for entry in entries])


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """Return MTH of the leaves with these hashes, in one pass and O(log n) memory.

    Raises :class:`ProofError` if a leaf hash is not 32 bytes.
    """
    # Perfect subtrees, largest first; leaf i completes one subtree per
    # trailing 1 bit of i, merging it into the stack.
    stack: list[bytes] = []
    for i, h in enumerate(leaf_hashes):
        _check_hash(h, f"leaf hash {i}")
        merges = i
        while merges & 1:
            h = node_hash(stack.pop(), h)
            merges >>= 1
        stack.append(h)
    if not stack:
        return EMPTY_ROOT
    h = stack.pop()
    while stack:
        h = node_hash(stack.pop(), h)
    return h


class RootBuilder:
    """MTH of leaf hashes fed in order, in one pass and O(log n) memory.

    :meth:`add` takes packed leaf hashes (32 bytes each, concatenated) in
    chunks of any length that is a multiple of 32; :meth:`root` is the root
    of everything added so far and may be called at any time, so one pass
    gives an old tree's root and then the new one's. Same result as
    :func:`root_hash`, about twice as fast: aligned blocks of
    ``ROOT_BLOCK_LEAVES`` leaves (perfect subtrees) are hashed level by level.
    """

    __slots__ = ("_blocks", "_pending", "_stack", "size")

    def __init__(self) -> None:
        self.size = 0
        self._pending = bytearray()  # the leaves after the last full block
        self._stack: list[bytes] = []  # roots of perfect subtrees of whole blocks, largest first
        self._blocks = 0

    def add(self, packed: bytes) -> None:
        """Append the leaves whose hashes are packed in ``packed``.

        Raises :class:`ProofError` if its length is not a multiple of 32 or
        the tree would grow past ``MAX_TREE_SIZE``.
        """
        if len(packed) % HASH_SIZE:
            raise ProofError(f"packed leaf hashes are not a multiple of {HASH_SIZE} bytes")
        if self.size + len(packed) // HASH_SIZE > MAX_TREE_SIZE:
            raise ProofError("tree size out of range")
        self.size += len(packed) // HASH_SIZE
        block = ROOT_BLOCK_LEAVES * HASH_SIZE
        data = memoryview(packed)
        if self._pending:
            take = block - len(self._pending)
            self._pending += data[:take]
            data = data[take:]
            if len(self._pending) < block:
                return
            self._push(_perfect_root(bytes(self._pending)))
            self._pending.clear()
        while len(data) >= block:
            self._push(_perfect_root(bytes(data[:block])))
            data = data[block:]
        self._pending += data

    def root(self) -> bytes:
        """Return MTH of the leaves added so far (``EMPTY_ROOT`` for none)."""
        parts = list(self._stack)
        if self._pending:
            p = bytes(self._pending)
            h = root_hash(p[i : i + HASH_SIZE] for i in range(0, len(p), HASH_SIZE))
        elif parts:
            h = parts.pop()
        else:
            return EMPTY_ROOT
        # Block subtrees are larger than the pending tail and shrink left to
        # right, so folding from the right follows RFC 9162's splits.
        while parts:
            h = node_hash(parts.pop(), h)
        return h

    def _push(self, h: bytes) -> None:
        """Add one block's root, merging equal subtrees (a binary counter on blocks)."""
        merges = self._blocks
        while merges & 1:
            h = node_hash(self._stack.pop(), h)
            merges >>= 1
        self._stack.append(h)
        self._blocks += 1


def _perfect_root(packed: bytes) -> bytes:
    """MTH of a power-of-two number of packed leaf hashes, one level at a time."""
    # Siblings sit side by side, so each node hashes one 64-byte slice.
    pair = 2 * HASH_SIZE
    while len(packed) > HASH_SIZE:
        packed = b"".join([_sha256(_NODE_PREFIX + packed[i : i + pair]).digest()
                           for i in range(0, len(packed), pair)])  # fmt: skip
    return packed


# -- stored hash layout ---------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Return the storage position of the hash of perfect subtree (level, n).

    Raises :class:`ProofError` for a negative level or n.
    """
    if level < 0 or n < 0:
        raise ProofError(f"no stored hash ({level}, {n})")
    # The hash is stored right after the leaf hash of its last leaf m, and
    # leaf m's hash sits at sum(m >> k for k >= 0) == 2m - popcount(m).
    m = ((n + 1) << level) - 1
    return 2 * m - m.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """Return (level, n) such that ``stored_hash_index(level, n) == index``.

    Raises :class:`ProofError` for a negative index.
    """
    if index < 0:
        raise ProofError(f"no stored hash at {index}")
    # stored_hash_index(0, n) <= 2n, so the leaf that stored `index` is at
    # least index // 2, and at most log2(index) leaves further on.
    n = index // 2
    start = stored_hash_index(0, n)
    while True:
        # Leaf n stores 1 + trailing_zeros(n + 1) hashes.
        following = start + 1 + _trailing_zeros(n + 1)
        if following > index:
            break
        n, start = n + 1, following
    level = index - start
    return level, n >> level


def stored_hash_count(size: int) -> int:
    """Return how many hashes a tree of ``size`` leaves stores.

    Raises :class:`ProofError` for a size out of range.
    """
    _check_size(size)
    # One hash per perfect subtree: sum(size >> level) == 2 size - popcount(size).
    return 2 * size - size.bit_count()


def stored_hashes_for_leaf(index: int, leaf_hash: bytes, reader: HashReader) -> list[bytes]:
    """Return the hashes to store when appending leaf ``index``.

    They go at consecutive positions from ``stored_hash_index(0, index)``:
    the leaf hash, then the root of each subtree that this leaf completes.
    Reads (once) the left siblings of those subtrees from ``reader``.
    Raises :class:`ProofError` for a bad index, leaf hash or reader answer.
    """
    if not 0 <= index < MAX_TREE_SIZE:
        raise ProofError(f"leaf index {index} out of range")
    _check_hash(leaf_hash, "leaf hash")
    completed = _trailing_zeros(index + 1)
    if completed == 0:
        return [leaf_hash]
    lefts = _read(
        reader, [stored_hash_index(level, (index >> level) - 1) for level in range(completed)]
    )
    hashes = [leaf_hash]
    h = leaf_hash
    for left in lefts:
        h = node_hash(left, h)
        hashes.append(h)
    return hashes


# -- roots and proofs from stored hashes ---------------------------------------


def tree_hash(size: int, reader: HashReader) -> bytes:
    """Return the root hash of the first ``size`` leaves, reading stored hashes once.

    Raises :class:`ProofError` for a size out of range or a bad reader answer.
    """
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    return _prove([(0, size)], reader)[0]


def prove_inclusion(index: int, size: int, reader: HashReader) -> list[bytes]:
    """Return the RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    Raises :class:`ProofError` unless ``0 <= index < size <= MAX_TREE_SIZE``,
    or for a bad reader answer.
    """
    _check_size(size)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    # RFC 9162 PATH: walk down to the leaf; each step's sibling subtree is
    # one proof hash. Collected top-down, the proof is bottom-up.
    spans: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            spans.append((lo + k, hi))
            hi = lo + k
        else:
            spans.append((lo, lo + k))
            lo += k
    spans.reverse()
    return _prove(spans, reader)


def prove_consistency(size1: int, size2: int, reader: HashReader) -> list[bytes]:
    """Return the RFC 9162 consistency proof from tree size ``size1`` to ``size2``.

    Raises :class:`ProofError` unless ``1 <= size1 <= size2 <= MAX_TREE_SIZE``,
    or for a bad reader answer. Equal sizes give an empty proof.
    """
    _check_size(size2)
    if not 1 <= size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    # RFC 9162 SUBPROOF: walk down until the old tree is a whole subtree.
    spans: list[tuple[int, int]] = []
    lo, hi = 0, size2
    while size1 != hi:
        k = _split(hi - lo)
        if size1 <= lo + k:
            spans.append((lo + k, hi))
            hi = lo + k
        else:
            spans.append((lo, lo + k))
            lo += k
    if lo != 0:
        # That subtree's root, unless it is the old tree itself (the verifier
        # has that root already).
        spans.append((lo, hi))
    spans.reverse()
    return _prove(spans, reader)


def _prove(spans: Sequence[tuple[int, int]], reader: HashReader) -> list[bytes]:
    """Return MTH of each leaf range in ``spans``, with one read for them all."""
    indexes: list[int] = []
    for lo, hi in spans:
        _subtree_indexes(lo, hi, indexes)
    if not indexes:
        return []
    hashes = iter(_read(reader, indexes))
    return [_subtree_hash(hi - lo, hashes) for lo, hi in spans]


def _subtree_indexes(lo: int, hi: int, out: list[int]) -> None:
    """Append the stored hashes that make up MTH(D[lo:hi]), largest first."""
    # Every range we ask for starts at a multiple of its largest power-of-two
    # part, so it splits into the perfect subtrees given by the bits of hi - lo.
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        out.append(stored_hash_index(level, lo >> level))
        lo += 1 << level


def _subtree_hash(width: int, hashes: Iterator[bytes]) -> bytes:
    """Fold the next popcount(width) hashes (from _subtree_indexes) into MTH."""
    parts = [next(hashes) for _ in range(width.bit_count())]
    h = parts.pop()
    while parts:
        h = node_hash(parts.pop(), h)
    return h


def _read(reader: HashReader, indexes: list[int]) -> list[bytes]:
    """Call the reader once and check its answer, which comes from storage."""
    hashes = reader.read_hashes(indexes)
    if len(hashes) != len(indexes):
        raise ProofError(f"hash reader returned {len(hashes)} hashes for {len(indexes)} indexes")
    for i, h in zip(indexes, hashes, strict=True):
        _check_hash(h, f"stored hash {i}")
    return hashes


# -- verification ----------------------------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows leaf ``index`` with ``leaf_hash`` in the tree ``root`` of ``size``.

    Returns None on success; raises :class:`ProofError` naming what is wrong.
    """
    _check_size(size)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf_hash, "leaf hash")
    # Below level `inner` the paths to `index` and to the last leaf differ,
    # above it the proof holds only left siblings (the "border").
    inner = (index ^ (size - 1)).bit_length()
    want = inner + (index >> inner).bit_count()
    if len(proof) != want:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, want {want}")
    # This loop runs for every exported log entry: keep it to a hash a step.
    h, bits = leaf_hash, index
    for p in proof[:inner]:
        if len(p) != HASH_SIZE:
            _bad_proof_hash(proof)
        if bits & 1:
            h = _sha256(_NODE_PREFIX + p + h).digest()
        else:
            h = _sha256(_NODE_PREFIX + h + p).digest()
        bits >>= 1
    for p in proof[inner:]:
        if len(p) != HASH_SIZE:
            _bad_proof_hash(proof)
        h = _sha256(_NODE_PREFIX + p + h).digest()
    if h != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that ``proof`` shows tree ``root1`` of ``size1`` is a prefix of tree ``root2`` of ``size2``.

    Returns None on success; raises :class:`ProofError` naming what is wrong.
    """
    if not 1 <= size1 <= size2 <= MAX_TREE_SIZE:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError("equal tree sizes with different root hashes")
        return
    _check_hash(root1, "first root hash")
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    shift = _trailing_zeros(size1)
    # The proof starts with the root of the size-2**shift subtree that holds
    # leaf size1 - 1, unless that subtree is the whole old tree.
    start = 0 if size1 == 1 << shift else 1
    want = start + inner - shift + border
    if len(proof) != want:
        raise ProofError(f"consistency proof has {len(proof)} hashes, want {want}")
    if any(len(p) != HASH_SIZE for p in proof):
        _bad_proof_hash(proof)
    seed = proof[0] if start else root1
    hash1, hash2 = _chain_consistency(seed, proof[start:], (size1 - 1) >> shift, inner - shift)
    if hash1 != root1:
        raise ProofError("consistency proof does not lead to the first root hash")
    if hash2 != root2:
        raise ProofError("consistency proof does not lead to the second root hash")


def _chain_consistency(
    seed: bytes, path: Sequence[bytes], mask: int, inner: int
) -> tuple[bytes, bytes]:
    """Hash up from ``seed`` to both roots (RFC 9162 2.1.4.2 step 6)."""
    h1 = h2 = seed
    for i, p in enumerate(path):
        if i >= inner or (mask >> i) & 1:
            # A left sibling: inside both trees.
            h1 = _sha256(_NODE_PREFIX + p + h1).digest()
            h2 = _sha256(_NODE_PREFIX + p + h2).digest()
        else:
            # A right sibling: only in the new tree.
            h2 = _sha256(_NODE_PREFIX + h2 + p).digest()
    return h1, h2


# -- helpers -----------------------------------------------------------------------


def _split(n: int) -> int:
    """Return the largest power of two smaller than n (n >= 2), RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _trailing_zeros(n: int) -> int:
    """Return the number of trailing zero bits of n > 0."""
    return (n & -n).bit_length() - 1


def _bad_proof_hash(proof: Sequence[bytes]) -> NoReturn:
    i = next(i for i, p in enumerate(proof) if len(p) != HASH_SIZE)
    raise ProofError(f"proof hash {i} is {len(proof[i])} bytes, want {HASH_SIZE}")


def _check_size(size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ProofError(f"tree size {size} out of range")


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} is {len(h)} bytes, want {HASH_SIZE}")


class MemoryTree:
    """An append-only log in memory that stores hashes exactly as a ledger does.

    For tests and small uses. It is a :class:`HashReader`, so the module
    functions apply: ``prove_inclusion(i, tree.size, tree)``.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._hashes: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        """Append a leaf by its hash (see :func:`leaf_hash`) and return its index.

        Raises :class:`ProofError` if the hash is not 32 bytes.
        """
        self._hashes.extend(stored_hashes_for_leaf(self._size, leaf_hash, self))
        self._size += 1
        return self._size - 1

    def root_hash(self) -> bytes:
        """Return the root hash of the whole tree."""
        return tree_hash(self._size, self)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the stored hashes at ``indexes``; raises :class:`ProofError` for one not stored."""
        stored = len(self._hashes)
        for i in indexes:
            if not 0 <= i < stored:
                raise ProofError(f"hash {i} is not stored")
        return [self._hashes[i] for i in indexes]
