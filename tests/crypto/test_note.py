"""Tests for carebridge.crypto.note and tlog_proof: published vectors, strict parsing, properties."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import pickle
from pathlib import Path

import pytest
from carebridge.crypto.errors import CryptoError, NoteError, ProofError
from carebridge.crypto.merkle import (
    MAX_TREE_SIZE,
    MemoryTree,
    leaf_hash,
    prove_inclusion,
)
from carebridge.crypto.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Checkpoint,
    Signature,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
)
from carebridge.crypto.tlog_proof import TlogProof, parse_tlog_proof, verify_tlog_proof
from hypothesis import given
from hypothesis import strategies as st

# C2SP and golang.org/x/mod signed notes, in the repo (sources and licences in its README).
NOTE_VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "signed-note" / "signed-note.json"

LOG = Signer(name="log.carebridge.example", seed=bytes(range(32)))
WITNESS = Signer(name="witness.example", seed=bytes(range(1, 33)))
# Same name as LOG, different key: must count as unknown, never as LOG.
IMPOSTOR = Signer(name="log.carebridge.example", seed=bytes(range(2, 34)))


def _vector_params() -> list[object]:
    # Read at collection: a missing file is a collection error, not a skip.
    return [pytest.param(v, id=v["name"]) for v in json.loads(NOTE_VECTORS.read_text())["vectors"]]


@pytest.mark.parametrize("vector", _vector_params())
def test_signed_note_vector(vector: dict) -> None:
    msg = vector["note"].encode()
    verifier = Verifier.parse(vector["vkey"])
    assert verifier.encode() == vector["vkey"]
    note = open_note(msg, [verifier])
    text, _, line = vector["note"].rpartition("\n\n")
    assert note.text == text + "\n"
    sig = line.removeprefix("\u2014 ").rstrip("\n").split(" ")[1]
    assert note.signatures == (Signature(name=verifier.name, key_id=verifier.key_id, base64=sig),)
    assert note.unverified_signatures == ()
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(msg, [WITNESS.verifier])
    if "skey" in vector:
        signer = Signer.parse(vector["skey"])
        assert signer.verifier == verifier
        assert signer.encode() == vector["skey"]
        # Ed25519 is deterministic: re-signing reproduces the note byte for byte.
        assert sign_note(note.text, signer) == msg


def test_signed_note_vectors_are_present() -> None:
    vectors = json.loads(NOTE_VECTORS.read_text())["vectors"]
    assert len(vectors) >= 2 and any("skey" in v for v in vectors)


# -- keys ---------------------------------------------------------------------------

PETER_PUB = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"


def _vkey(name: str, public: bytes, *, key_type: int = 1, key_id: str | None = None) -> str:
    raw = bytes([key_type]) + public
    if key_id is None:
        key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()
    return f"{name}+{key_id}+{base64.b64encode(raw).decode()}"


@pytest.mark.parametrize(
    ("vkey", "match"),
    [
        ("", "not name\\+keyid\\+key"),
        ("PeterNeumann+c74f20a3", "not name\\+keyid\\+key"),
        ("+c74f20a3+" + PETER_PUB, "key name is empty"),
        ("Peter Neumann+c74f20a3+" + PETER_PUB, "space"),
        ("Peter\u00a0Neumann+c74f20a3+" + PETER_PUB, "space"),
        ("Peter\tNeumann+c74f20a3+" + PETER_PUB, "space"),
        ("PeterNeumann+C74F20A3+" + PETER_PUB, "8 lowercase hex"),
        ("PeterNeumann+c74f20a+" + PETER_PUB, "8 lowercase hex"),
        ("PeterNeumann+0xc74f20+" + PETER_PUB, "8 lowercase hex"),
        ("PeterNeumann+c74f20a4+" + PETER_PUB, "key ID does not match"),
        ("PeterNeumann+c74f20a3+" + PETER_PUB[:-1], "not canonical base64"),
        ("PeterNeumann+c74f20a3+" + PETER_PUB + "\n", "not canonical base64"),
        ("PeterNeumann+c74f20a3+ " + PETER_PUB, "not canonical base64"),
        (_vkey("x", bytes(32), key_type=2), "not an Ed25519 key"),
        (_vkey("x", bytes(31)), "not an Ed25519 key"),
        # y = 1 is the identity point: small order, verifies forged signatures.
        (_vkey("x", b"\x01" + bytes(31)), "not a valid Ed25519 public key"),
    ],
)
def test_verifier_key_parsing_is_strict(vkey: str, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        Verifier.parse(vkey)


@pytest.mark.parametrize(
    ("skey", "match"),
    [
        ("PeterNeumann+c74f20a3+" + PETER_SEED, "does not start with"),
        ("private+key+PeterNeumann+c74f20a3+" + PETER_SEED, "does not start with"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a4+" + PETER_SEED, "key ID does not match"),
        ("PRIVATE+KEY+Peter+Neumann+c74f20a3+" + PETER_SEED, "8 lowercase hex"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+" + PETER_SEED[:-4], "not an Ed25519 key"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+" + "Ag" + PETER_SEED[2:], "not an Ed25519 key"),
    ],
)
def test_signer_key_parsing_is_strict_and_quiet(skey: str, match: str) -> None:
    with pytest.raises(NoteError, match=match) as caught:
        Signer.parse(skey)
    assert PETER_SEED[4:20] not in str(caught.value)
    assert caught.value.__cause__ is None


def test_generated_keys_round_trip() -> None:
    signer = Signer.generate("carebridge.example/log")
    again = Signer.parse(signer.encode())
    assert again.verifier == signer.verifier
    assert Verifier.parse(signer.verifier.encode()) == signer.verifier
    assert signer.verifier.verify(b"msg", signer.sign(b"msg"))
    assert not signer.verifier.verify(b"msg2", signer.sign(b"msg"))
    assert not signer.verifier.verify(b"msg", b"short")
    assert Signer.generate("carebridge.example/log").verifier != signer.verifier


def test_signer_secret_does_not_leak() -> None:
    secret = LOG.encode().rsplit("+", 1)[1]
    for shown in (repr(LOG), str(LOG), repr(LOG.verifier), f"{LOG!r}"):
        assert secret not in shown and bytes(range(32)).hex() not in shown
    assert "log.carebridge.example" in repr(LOG)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(LOG)
    assert copy.copy(LOG) is LOG and copy.deepcopy(LOG) is LOG


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\u2003b", "a\nb", "a\x01b", "a\ud800b"])
def test_bad_key_names(name: str) -> None:
    with pytest.raises(NoteError, match="key name"):
        Signer(name=name, seed=bytes(32))


# -- notes ----------------------------------------------------------------------------


def test_unknown_signatures_are_kept_apart() -> None:
    msg = sign_note("hello\n", WITNESS, LOG, IMPOSTOR)
    note = open_note(msg, [LOG.verifier])
    assert [(s.name, s.key_id) for s in note.signatures] == [(LOG.name, LOG.key_id)]
    assert [(s.name, s.key_id) for s in note.unverified_signatures] == [
        (WITNESS.name, WITNESS.key_id),
        (IMPOSTOR.name, IMPOSTOR.key_id),
    ]
    both = open_note(msg, [LOG.verifier, WITNESS.verifier, LOG.verifier])
    assert {s.name for s in both.signatures} == {LOG.name, WITNESS.name}
    assert len(both.unverified_signatures) == 1


def test_repeated_signature_lines_count_once() -> None:
    msg = sign_note("hello\n", LOG)
    line = msg.split(b"\n\n", 1)[1]
    note = open_note(msg + line, [LOG.verifier])
    assert len(note.signatures) == 1


@pytest.mark.parametrize(
    "text",
    ["\n", "a\n\nb\n", "ends with a blank line\n\n", "\u00fcn\u00efc\u00f8d\u00e9 \u2014 ok\n"],
)
def test_texts_with_blank_lines_round_trip(text: str) -> None:
    assert open_note(sign_note(text, LOG), [LOG.verifier]).text == text


def _signed(text: str = "hello\n") -> bytes:
    return sign_note(text, LOG)


def _bad_sig_note() -> bytes:
    text = _signed().split(b"\n\n")[0]
    return text + b"\n\n" + sign_note("other\n", LOG).split(b"\n\n")[1]


def _noncanonical_sig() -> bytes:
    # 68 bytes of key ID and signature leave 2 unused bits before the "=".
    msg = _signed()
    last = msg[-3:-2]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    bumped = alphabet[alphabet.index(last) ^ 1 : alphabet.index(last) ^ 1 + 1]
    return msg[:-3] + bumped + msg[-2:]


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (b"hello\xff\n\n" + _signed().split(b"\n\n")[1], "not valid UTF-8"),
        (_signed("hello\n").replace(b"hello", b"hel\tlo"), "control character"),
        (_signed().replace(b"\n\n", b"\n"), "no signature lines"),
        (_signed()[:-1], "no signature lines"),
        (b"hello\n\n", "no signature lines"),
        (_signed().replace("\u2014".encode(), b"-"), "em dash"),
        (_signed().rsplit(b" ", 1)[0] + b"\n", "not base64"),
        (b"hello\n\n\xe2\x80\x94 log AAAA\n", "not base64 of a key ID and a signature"),
        (_noncanonical_sig(), "not base64"),
        (_signed().replace(LOG.name.encode(), b"lo+g"), "key name"),
        (_signed() + b"\xe2\x80\x94 other QUFBQUFB\n" * MAX_SIGNATURES, "more than 100 signatures"),
        (b"x" * MAX_NOTE_SIZE + _signed(), "larger than"),
        (_bad_sig_note(), "invalid signature by known key log.carebridge.example"),
        (sign_note("hello\n", WITNESS, IMPOSTOR), "no signature from a known key"),
    ],
)
def test_open_note_rejects(msg: bytes, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        open_note(msg, [LOG.verifier])


@pytest.mark.parametrize(
    ("text", "signers", "match"),
    [
        ("no newline", (LOG,), "does not end in a newline"),
        ("tab\there\n", (LOG,), "control character"),
        ("lone \ud800\n", (LOG,), "not valid Unicode"),
        ("fine\n", (), "needs 1 to 100 signers"),
        ("fine\n", (LOG, LOG), "share a name and key ID"),
        ("x" * MAX_NOTE_SIZE + "\n", (LOG,), "larger than"),
    ],
)
def test_sign_note_rejects(text: str, signers: tuple[Signer, ...], match: str) -> None:
    with pytest.raises(NoteError, match=match):
        sign_note(text, *signers)


note_texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="".join(map(chr, range(0x20))))
    | st.just("\n"),
    max_size=200,
).map(lambda t: t + "\n")
signer_sets = st.sampled_from([(LOG,), (LOG, WITNESS), (WITNESS, LOG)])


@given(note_texts, signer_sets)
def test_sign_open_round_trip(text: str, signers: tuple[Signer, ...]) -> None:
    note = open_note(sign_note(text, *signers), [s.verifier for s in signers])
    assert note.text == text
    assert [s.name for s in note.signatures] == [s.name for s in signers]


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    bit %= len(out) * 8
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@given(note_texts, st.integers(min_value=0))
def test_any_bit_flip_in_a_signed_note_is_rejected(text: str, bit: int) -> None:
    with pytest.raises(NoteError):
        open_note(_flip(sign_note(text, LOG), bit), [LOG.verifier])


@given(note_texts, signer_sets, st.integers(min_value=0))
def test_a_bit_flip_never_keeps_every_signature(
    text: str, signers: tuple[Signer, ...], bit: int
) -> None:
    # A flip in one signer's name makes that line unknown, which the spec says
    # to ignore, so the note may still open; but never with all its signers.
    try:
        note = open_note(_flip(sign_note(text, *signers), bit), [s.verifier for s in signers])
    except NoteError:
        return
    assert len(note.signatures) < len(signers)


# -- checkpoints ------------------------------------------------------------------------

SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def test_spec_checkpoint_parses() -> None:
    cp = parse_checkpoint(SPEC_CHECKPOINT)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.format() == SPEC_CHECKPOINT


ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f"o\n1\n{ROOT}", "does not end in a newline"),
        ("o\n1\n", "needs origin, tree size and root hash"),
        (f"\n1\n{ROOT}\n", "origin is empty"),
        (f"o\n01\n{ROOT}\n", "leading zeros"),
        (f"o\n+1\n{ROOT}\n", "tree size"),
        (f"o\n 1\n{ROOT}\n", "tree size"),
        (f"o\n\u0661\n{ROOT}\n", "tree size"),
        (f"o\n-0\n{ROOT}\n", "tree size"),
        (f"o\n\n{ROOT}\n", "tree size"),
        (f"o\n{MAX_TREE_SIZE + 1}\n{ROOT}\n", "tree size out of range"),
        (f"o\n{'9' * 40}\n{ROOT}\n", "tree size"),
        ("o\n1\nCsUY\n", "root hash is not 32 bytes"),
        (f"o\n1\n{ROOT[:-1]}\n", "root hash is not canonical base64"),
        (f"o\n1\n{ROOT[:-2]}J=\n", "root hash is not canonical base64"),
        (f"o\n1\n{ROOT}\n\n", "extension line is empty"),
        (f"o\n1\n{ROOT}\next\n\n", "extension line is empty"),
        (f"o\x01\n1\n{ROOT}\n", "control character"),
    ],
)
def test_parse_checkpoint_is_strict(text: str, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        parse_checkpoint(text)


line_text = st.text(
    st.characters(
        blacklist_categories=("Cs",), blacklist_characters="".join(map(chr, range(0x20)))
    ),
    min_size=1,
    max_size=40,
)
checkpoints = st.builds(
    Checkpoint,
    origin=line_text,
    size=st.integers(0, MAX_TREE_SIZE),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line_text, max_size=3).map(tuple),
)


@given(checkpoints)
def test_checkpoint_round_trip(cp: Checkpoint) -> None:
    assert parse_checkpoint(cp.format()) == cp
    assert parse_checkpoint(cp.format()).format() == cp.format()


def test_signed_checkpoint() -> None:
    cp = Checkpoint(origin=LOG.name, size=5, root_hash=bytes(32), extensions=("ext",))
    msg = sign_checkpoint(cp, LOG, WITNESS)
    assert open_checkpoint(msg, LOG.verifier, origin=LOG.name) == cp
    with pytest.raises(
        NoteError, match="for origin 'log.carebridge.example', want 'other.example'"
    ):
        open_checkpoint(msg, LOG.verifier, origin="other.example")
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_checkpoint(sign_checkpoint(cp, WITNESS, IMPOSTOR), LOG.verifier, origin=LOG.name)
    with pytest.raises(NoteError, match="tree size"):
        open_checkpoint(
            sign_note(f"{LOG.name}\nfive\n{ROOT}\n", LOG), LOG.verifier, origin=LOG.name
        )


# -- tlog proofs --------------------------------------------------------------------------

SPEC_TLOG_PROOF = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u2014 example.com/fancylog hI2DJw[...]1roloI=
\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==
""".encode()


def test_spec_tlog_proof_parses_and_formats_back() -> None:
    proof = parse_tlog_proof(SPEC_TLOG_PROOF)
    assert proof.index == 73894 and len(proof.hashes) == 5
    assert proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert proof.signed_checkpoint.startswith(b"example.com/fancylog\n109482\n")
    assert proof.format() == SPEC_TLOG_PROOF
    # The example's signatures are elided, so it can never verify.
    with pytest.raises(NoteError):
        verify_tlog_proof(
            proof, leaf_hash=bytes(32), verifier=LOG.verifier, origin="example.com/fancylog"
        )


ENTRIES = [b"entry %d" % i for i in range(21)]


def _log() -> tuple[MemoryTree, bytes]:
    tree = MemoryTree()
    for entry in ENTRIES:
        tree.append_leaf_hash(leaf_hash(entry))
    cp = Checkpoint(origin=LOG.name, size=tree.size, root_hash=tree.root_hash())
    return tree, sign_checkpoint(cp, LOG)


TREE, SIGNED_CHECKPOINT = _log()


def _proof(index: int, extra: bytes = b"") -> TlogProof:
    hashes = prove_inclusion(index, TREE.size, TREE)
    return TlogProof(
        index=index, hashes=tuple(hashes), signed_checkpoint=SIGNED_CHECKPOINT, extra=extra
    )


@pytest.mark.parametrize("index", range(len(ENTRIES)))
def test_tlog_proofs_verify_for_every_entry(index: int) -> None:
    proof = parse_tlog_proof(_proof(index, extra=b"ctx" if index % 2 else b"").format())
    assert proof == _proof(index, extra=b"ctx" if index % 2 else b"")
    cp = verify_tlog_proof(
        proof, leaf_hash=leaf_hash(ENTRIES[index]), verifier=LOG.verifier, origin=LOG.name
    )
    assert cp.size == len(ENTRIES)
    other = (index + 1) % len(ENTRIES)
    with pytest.raises(ProofError):
        verify_tlog_proof(
            proof, leaf_hash=leaf_hash(ENTRIES[other]), verifier=LOG.verifier, origin=LOG.name
        )


def test_tlog_proof_checkpoint_must_be_the_logs() -> None:
    proof = _proof(3)
    with pytest.raises(NoteError, match="want 'elsewhere'"):
        verify_tlog_proof(
            proof, leaf_hash=leaf_hash(ENTRIES[3]), verifier=LOG.verifier, origin="elsewhere"
        )
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_tlog_proof(
            proof, leaf_hash=leaf_hash(ENTRIES[3]), verifier=WITNESS.verifier, origin=LOG.name
        )


GOOD = _proof(6).format()
H = base64.b64encode(bytes(32))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (GOOD.replace(b"@v1", b"@v2"), "does not start with"),
        (GOOD.replace(b"\n\n", b"\n", 1), "tlog proof"),
        (GOOD.split(b"\n\n")[0], "no blank line"),
        (GOOD.replace(b"index 6", b"index 06"), "index line"),
        (GOOD.replace(b"index 6", b"index  6"), "index line"),
        (GOOD.replace(b"index 6", b"idx 6"), "index line"),
        (GOOD.replace(b"index 6\n", b""), "index line"),
        (GOOD.replace(b"index 6", b"index 9223372036854775807"), "index out of range"),
        (GOOD.replace(b"index 6", b"extra \nindex 6"), "extra line"),
        (GOOD.replace(b"index 6", b"extra Zm9v\nindex 6\nextra Zm9v"), "hash line"),
        (GOOD.replace(b"index 6\n", b"index 6\nAAAA\n"), "hash line"),
        (GOOD.replace(b"index 6\n", b"index 6\n" + H[:-1] + b"\n"), "hash line"),
        (GOOD.replace(b"index 6\n", b"index 6\n" + (H + b"\n") * 64), "more than 63 hashes"),
        (GOOD.replace(b"tlog", b"tl\xc3\xb6g"), "not ASCII"),
        (GOOD[:-1], "does not end in a newline"),
        (GOOD + b"x" * MAX_NOTE_SIZE * 2, "larger than"),
    ],
)
def test_parse_tlog_proof_is_strict(data: bytes, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        parse_tlog_proof(data)


@given(st.sampled_from(range(len(ENTRIES))), st.integers(min_value=0))
def test_any_bit_flip_in_a_tlog_proof_is_rejected(index: int, bit: int) -> None:
    data = _flip(_proof(index).format(), bit)
    with pytest.raises(CryptoError):
        proof = parse_tlog_proof(data)
        verify_tlog_proof(
            proof, leaf_hash=leaf_hash(ENTRIES[index]), verifier=LOG.verifier, origin=LOG.name
        )
