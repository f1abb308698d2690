"""Tests for carebridge.crypto.merkle: published vectors, exhaustive small trees, properties."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from carebridge.crypto.errors import ProofError
from carebridge.crypto.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_CONSISTENCY_PROOF_HASHES,
    MAX_INCLUSION_PROOF_HASHES,
    MAX_TREE_SIZE,
    ROOT_BLOCK_LEAVES,
    MemoryTree,
    RootBuilder,
    leaf_hash,
    node_hash,
    packed_leaf_hashes,
    prove_consistency,
    prove_inclusion,
    root_hash,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    stored_hashes_for_leaf,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

# transparency-dev/merkle's testdata, in the repo (source and licence in its README).
MERKLE_VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "merkle"
# transparency-dev/merkle ships this many vectors of each kind; fewer means
# a broken copy, not a missing one.
VECTOR_COUNT = 98


def _vector_params(kind: str) -> list[object]:
    # A missing folder gives no cases here; test_vector_folders_are_complete fails on it.
    folder = MERKLE_VECTORS / kind
    return [pytest.param(p, id=str(p.relative_to(folder))) for p in sorted(folder.rglob("*.json"))]


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_vector_folders_are_complete(kind: str) -> None:
    vectors = [json.loads(p.read_text()) for p in (MERKLE_VECTORS / kind).rglob("*.json")]
    assert len(vectors) == VECTOR_COUNT, f"{MERKLE_VECTORS / kind}: want {VECTOR_COUNT} vectors"
    assert {v["wantErr"] for v in vectors} == {True, False}


@pytest.mark.parametrize("path", _vector_params("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (
        _b64(v["leafHash"]),
        v["leafIdx"],
        v["treeSize"],
        [_b64(p) for p in v["proof"] or []],
        _b64(v["root"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        assert verify_inclusion(*args) is None


@pytest.mark.parametrize("path", _vector_params("consistency"))
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    proof = [_b64(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        assert verify_consistency(*args) is None


# -- a naive RFC 6962 reference over one fixed list of leaves -------------------

LEAVES = tuple(leaf_hash(b"entry %d" % i) for i in range(300))


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def ref_mth(lo: int, hi: int) -> bytes:
    """RFC 6962 MTH(D[lo:hi])."""
    if hi == lo:
        return hashlib.sha256(b"").digest()
    if hi - lo == 1:
        return LEAVES[lo]
    k = _k(hi - lo)
    return _node(ref_mth(lo, lo + k), ref_mth(lo + k, hi))


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    """RFC 6962 PATH(m, D[lo:hi]), m relative to lo."""
    if hi - lo == 1:
        return []
    k = _k(hi - lo)
    if m < k:
        return ref_path(m, lo, lo + k) + [ref_mth(lo + k, hi)]
    return ref_path(m - k, lo + k, hi) + [ref_mth(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    """RFC 6962 SUBPROOF(m, D[lo:hi], b)."""
    if m == hi - lo:
        return [] if whole else [ref_mth(lo, hi)]
    k = _k(hi - lo)
    if m <= k:
        return ref_subproof(m, lo, lo + k, whole) + [ref_mth(lo + k, hi)]
    return ref_subproof(m - k, lo + k, hi, False) + [ref_mth(lo, lo + k)]


@functools.cache
def big_tree() -> MemoryTree:
    tree = MemoryTree()
    for h in LEAVES:
        tree.append_leaf_hash(h)
    return tree


class CountingReader:
    """Wraps a reader and records each read_hashes call (each is a DB round trip)."""

    def __init__(self, inner: MemoryTree) -> None:
        self.inner = inner
        self.calls: list[list[int]] = []

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        self.calls.append(list(indexes))
        return self.inner.read_hashes(indexes)


class ZeroReader:
    """Answers any index with a zero hash: enough to exercise the index math of huge trees."""

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [bytes(HASH_SIZE)] * len(indexes)


# -- exhaustive small trees ---------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 65))
def test_roots_match_rfc6962(size: int) -> None:
    reader = CountingReader(big_tree())
    assert tree_hash(size, reader) == ref_mth(0, size)
    assert root_hash(LEAVES[:size]) == ref_mth(0, size)
    # One read of one stored hash per perfect subtree.
    assert len(reader.calls) == 1 and len(reader.calls[0]) == size.bit_count()


@pytest.mark.parametrize("size", range(1, 65))
def test_every_inclusion_proof(size: int) -> None:
    root = ref_mth(0, size)
    for index in range(size):
        reader = CountingReader(big_tree())
        proof = prove_inclusion(index, size, reader)
        assert proof == ref_path(index, 0, size)
        assert len(reader.calls) == (1 if proof else 0)
        verify_inclusion(LEAVES[index], index, size, proof, root)


@pytest.mark.parametrize("size2", range(1, 65))
def test_every_consistency_proof(size2: int) -> None:
    root2 = ref_mth(0, size2)
    for size1 in range(1, size2 + 1):
        reader = CountingReader(big_tree())
        proof = prove_consistency(size1, size2, reader)
        assert proof == ref_subproof(size1, 0, size2, True)
        assert len(reader.calls) == (1 if proof else 0)
        verify_consistency(size1, size2, proof, ref_mth(0, size1), root2)


def test_empty_tree() -> None:
    assert tree_hash(0, MemoryTree()) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root_hash([]) == EMPTY_ROOT
    assert MemoryTree().root_hash() == EMPTY_ROOT


def test_hash_functions() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


# -- stored hash layout -------------------------------------------------------------


def _tlog_stored_hash_index(level: int, n: int) -> int:
    """Go's tlog.StoredHashIndex, loop for loop."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def test_stored_hash_index_matches_tlog_and_inverts() -> None:
    for level in range(12):
        for n in range(300):
            index = stored_hash_index(level, n)
            assert index == _tlog_stored_hash_index(level, n)
            assert split_stored_hash_index(index) == (level, n)
    seen = {stored_hash_index(*split_stored_hash_index(i)) for i in range(5000)}
    assert seen == set(range(5000))


def test_stored_hashes_are_perfect_subtree_roots() -> None:
    tree = big_tree()
    count = stored_hash_count(len(LEAVES))
    assert count == 2 * len(LEAVES) - len(LEAVES).bit_count()
    for index, h in enumerate(tree.read_hashes(range(count))):
        level, n = split_stored_hash_index(index)
        assert h == ref_mth(n << level, (n + 1) << level)
    with pytest.raises(ProofError, match="not stored"):
        tree.read_hashes([count])


def test_stored_hashes_for_leaf_reads_once() -> None:
    tree = MemoryTree()
    for i, h in enumerate(LEAVES[:64]):
        reader = CountingReader(tree)
        stored = stored_hashes_for_leaf(i, h, reader)
        # The leaf, then one hash per subtree it completes.
        assert len(stored) == 1 + ((i + 1) & -(i + 1)).bit_length() - 1
        assert len(reader.calls) == (1 if len(stored) > 1 else 0)
        assert tree.append_leaf_hash(h) == i
        assert stored_hash_count(tree.size) == stored_hash_index(0, i) + len(stored)


# -- limits and bad input ------------------------------------------------------------


def test_proof_lengths_at_the_size_limit() -> None:
    reader = ZeroReader()
    assert len(prove_inclusion(0, MAX_TREE_SIZE, reader)) == MAX_INCLUSION_PROOF_HASHES
    assert (
        len(prove_inclusion(MAX_TREE_SIZE - 1, MAX_TREE_SIZE, reader)) <= MAX_INCLUSION_PROOF_HASHES
    )
    assert len(prove_consistency(3, MAX_TREE_SIZE, reader)) == MAX_CONSISTENCY_PROOF_HASHES
    for size1 in (1, 2**62, 2**62 + 1, MAX_TREE_SIZE - 1):
        assert len(prove_consistency(size1, MAX_TREE_SIZE, reader)) <= MAX_CONSISTENCY_PROOF_HASHES
    with pytest.raises(ProofError, match="out of range"):
        prove_inclusion(0, MAX_TREE_SIZE + 1, reader)
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(bytes(32), 0, MAX_TREE_SIZE + 1, [], bytes(32))


def test_longest_proofs_in_small_trees() -> None:
    # For sizes below 2**bits the longest proofs have bits and bits + 1
    # hashes; with 63 bits that is where the two limits come from.
    bits = 7
    reader = ZeroReader()
    sizes = range(1, 2**bits)
    assert max(len(prove_inclusion(i, n, reader)) for n in sizes for i in range(n)) == bits
    assert (
        max(len(prove_consistency(m, n, reader)) for n in sizes for m in range(1, n + 1))
        == bits + 1
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: prove_inclusion(3, 3, r), "not in a tree of size 3"),
        (lambda r: prove_inclusion(-1, 3, r), "not in a tree"),
        (lambda r: prove_consistency(0, 3, r), "from size 0"),
        (lambda r: prove_consistency(4, 3, r), "from size 4 to size 3"),
        (lambda r: tree_hash(-1, r), "out of range"),
        (lambda r: stored_hashes_for_leaf(0, b"short", r), "leaf hash is 5 bytes"),
        (lambda r: stored_hash_index(-1, 0), "no stored hash"),
        (lambda r: split_stored_hash_index(-1), "no stored hash"),
        (lambda r: root_hash([bytes(32), b"x"]), "leaf hash 1 is 1 bytes"),
    ],
)
def test_bad_arguments(call: Callable[[MemoryTree], object], match: str) -> None:
    with pytest.raises(ProofError, match=match):
        call(big_tree())


class ShortReader:
    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [bytes(HASH_SIZE)] * (len(indexes) - 1)


class TruncatingReader:
    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [b"\x00" * 31] * len(indexes)


@pytest.mark.parametrize(
    ("reader", "match"),
    [(ShortReader(), "returned 1 hashes for 2"), (TruncatingReader(), "31 bytes")],
)
def test_bad_reader_answers_are_refused(reader: object, match: str) -> None:
    with pytest.raises(ProofError, match=match):
        tree_hash(3, reader)  # type: ignore[arg-type]


def test_memory_tree_refuses_bad_leaf() -> None:
    tree = MemoryTree()
    with pytest.raises(ProofError):
        tree.append_leaf_hash(b"\x00" * 33)
    assert tree.size == 0


def test_verify_messages_name_the_problem() -> None:
    tree, root = big_tree(), ref_mth(0, 5)
    proof = prove_inclusion(2, 5, tree)
    with pytest.raises(ProofError, match="has 2 hashes, want 3"):
        verify_inclusion(LEAVES[2], 2, 5, proof[:-1], root)
    with pytest.raises(ProofError, match="proof hash 1 is 31 bytes"):
        verify_inclusion(LEAVES[2], 2, 5, [proof[0], proof[1][:31], proof[2]], root)
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_inclusion(LEAVES[3], 2, 5, proof, root)
    cproof = prove_consistency(3, 5, tree)
    with pytest.raises(ProofError, match="proof hash 1 is 33 bytes"):
        verify_consistency(3, 5, [cproof[0], cproof[1] + b"!", *cproof[2:]], ref_mth(0, 3), root)
    with pytest.raises(ProofError, match="first root"):
        verify_consistency(3, 5, cproof, ref_mth(0, 4), root)
    with pytest.raises(ProofError, match="second root"):
        verify_consistency(3, 5, cproof, ref_mth(0, 3), ref_mth(0, 6))


# -- properties ------------------------------------------------------------------------


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, len(LEAVES)))
    return draw(st.integers(0, size - 1)), size


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, len(LEAVES)))
    return draw(st.integers(1, size2)), size2


@given(
    inclusion_cases(),
    st.sampled_from(["proof", "root", "leaf"]),
    st.integers(0, 2**16),
    st.integers(0, 2**16),
)
def test_inclusion_bit_flip_is_rejected(
    case: tuple[int, int], target: str, which: int, bit: int
) -> None:
    index, size = case
    proof, root, leaf = prove_inclusion(index, size, big_tree()), ref_mth(0, size), LEAVES[index]
    verify_inclusion(leaf, index, size, proof, root)
    if target == "proof":
        assume(proof)
        proof[which % len(proof)] = _flip(proof[which % len(proof)], bit)
    elif target == "root":
        root = _flip(root, bit)
    else:
        leaf = _flip(leaf, bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)


@given(
    consistency_cases(),
    st.sampled_from(["proof", "root1", "root2"]),
    st.integers(0, 2**16),
    st.integers(0, 2**16),
)
def test_consistency_bit_flip_is_rejected(
    case: tuple[int, int], target: str, which: int, bit: int
) -> None:
    size1, size2 = case
    proof, root1, root2 = (
        prove_consistency(size1, size2, big_tree()),
        ref_mth(0, size1),
        ref_mth(0, size2),
    )
    verify_consistency(size1, size2, proof, root1, root2)
    if target == "proof":
        assume(proof)
        proof[which % len(proof)] = _flip(proof[which % len(proof)], bit)
    elif target == "root1":
        root1 = _flip(root1, bit)
    else:
        root2 = _flip(root2, bit)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, root2)


@given(inclusion_cases(), st.sampled_from(["drop-first", "drop-last", "append", "prepend"]))
def test_inclusion_proof_of_wrong_length_is_rejected(case: tuple[int, int], edit: str) -> None:
    index, size = case
    proof = prove_inclusion(index, size, big_tree())
    edited = {
        "drop-first": proof[1:],
        "drop-last": proof[:-1],
        "append": [*proof, LEAVES[0]],
        "prepend": [LEAVES[0], *proof],
    }[edit]
    assume(edited != proof)
    with pytest.raises(ProofError, match="hashes, want"):
        verify_inclusion(LEAVES[index], index, size, edited, ref_mth(0, size))


@given(st.lists(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), max_size=100))
def test_memory_tree_root_matches_one_pass_root(hashes: list[bytes]) -> None:
    tree = MemoryTree()
    for h in hashes:
        tree.append_leaf_hash(h)
    assert tree.root_hash() == root_hash(hashes)


def _packed(count: int, seed: int) -> bytes:
    return b"".join(hashlib.sha256(b"%d/%d" % (seed, i)).digest() for i in range(count))


@settings(deadline=None)
@given(st.integers(0, 3 * ROOT_BLOCK_LEAVES + 7), st.lists(st.integers(0, 1500), min_size=1, max_size=6),
       st.integers(0, 2**32))  # fmt: skip
def test_root_builder_matches_root_hash_at_every_cut(count: int, steps: list[int], seed: int) -> None:
    """Fed in chunks of any size, the builder's root after each chunk is MTH of the prefix."""
    packed = _packed(count, seed)
    reference = _memory_tree(packed)
    builder, position, turn = RootBuilder(), 0, 0
    while position < count:
        step = min(steps[turn % len(steps)] or 1, count - position)
        builder.add(packed[position * HASH_SIZE : (position + step) * HASH_SIZE])
        position, turn = position + step, turn + 1
        assert builder.size == position
        assert builder.root() == tree_hash(position, reference)
    assert builder.root() == root_hash(packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE))


def _memory_tree(packed: bytes) -> MemoryTree:
    tree = MemoryTree()
    for i in range(0, len(packed), HASH_SIZE):
        tree.append_leaf_hash(packed[i : i + HASH_SIZE])
    return tree


def test_root_builder_edges() -> None:
    assert RootBuilder().root() == EMPTY_ROOT
    builder = RootBuilder()
    builder.add(b"")
    assert builder.root() == EMPTY_ROOT and builder.size == 0
    with pytest.raises(ProofError, match="multiple of 32"):
        builder.add(b"x" * 33)
    packed = _packed(4 * ROOT_BLOCK_LEAVES, 1)  # block-aligned: whole perfect subtrees only
    builder.add(packed)
    assert builder.root() == root_hash(packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE))


def test_packed_leaf_hashes() -> None:
    entries = [b"", b"a", b"entry 2" * 100]
    assert packed_leaf_hashes(entries) == b"".join(leaf_hash(e) for e in entries)
    assert packed_leaf_hashes([]) == b""
