"""age v1 (carebridge.crypto.age): vectors, properties, then examples.

The CCTV vectors live in test_age_cctv.py; here: published vectors for the
pieces we wrote ourselves (bech32, HKDF, X25519 key derivation), Hypothesis
properties (round trips, tamper and truncation detection, canonical headers,
armor), and examples for chunk boundaries, limits, recipient rules, secrets
and constant memory.
"""

from __future__ import annotations

import gc
import io
import itertools
import os
import pickle
import random
import threading
import tracemalloc
from datetime import UTC, datetime

import pytest
from carebridge.crypto import age, keyfile
from carebridge.crypto.age import _bech32, _format, _pipeline, _primitives, _stream
from carebridge.crypto.age import scrypt as age_scrypt
from carebridge.crypto.age.armor import ArmorWriter, armored_reader
from carebridge.crypto.errors import AgeError, KeyFormatError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHUNK = 64 * 1024  # plaintext bytes per STREAM chunk (age spec)
TAG = 16  # Poly1305 tag per chunk
NONCE = 16  # payload nonce after the header
FAST_LOG_N = 10  # scrypt work factor for tests: milliseconds, not a second
PASSPHRASE = "correct horse battery staple"

# Keys made once per module: generating them is cheap, but Hypothesis runs
# each property hundreds of times.
X1, X2, X3 = (age.X25519Identity.generate() for _ in range(3))
H1, H2 = (age.HybridIdentity.generate() for _ in range(2))


def fresh_scrypt(log_n: int = FAST_LOG_N) -> age.ScryptRecipient:
    return age.ScryptRecipient(PASSPHRASE, log_n=log_n)


# Recipient kind -> (recipients, identities that must each open the file).
KINDS = {
    "x25519": lambda: ([X1.recipient], [X1]),
    "x25519-many": lambda: ([X1.recipient, X2.recipient, X3.recipient], [X1, X2, X3]),
    "hybrid": lambda: ([H1.recipient], [H1]),
    "hybrid-many": lambda: ([H1.recipient, H2.recipient], [H1, H2]),
    "scrypt": lambda: ([fresh_scrypt()], [age.ScryptIdentity(PASSPHRASE)]),
}


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def header_length(ciphertext: bytes) -> int:
    src = io.BytesIO(ciphertext)
    age.parse_header(src)
    return src.tell()


# -- external vectors ---------------------------------------------------------

# BIP 173, "Test vectors": valid strings (any case, as long as not mixed).
BIP173_VALID = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11" + "q" * 82 + "c8247j",  # the 90-character HRP-"1" vector
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

# BIP 173 invalid strings, minus the 90-character limit that age lifts.
BIP173_INVALID = [
    "\x201nwldj5",  # HRP character out of range
    "\x7f1axkwrx",  # HRP character out of range
    "\x801eym55h",  # HRP character out of range
    "pzry9x0s0muk",  # no separator
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # checksum too short
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum computed over the uppercase HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
]


@pytest.mark.parametrize("text", BIP173_VALID)
def test_bech32_bip173_valid_strings_decode_and_re_encode(text):
    hrp, data = _bech32.decode(text)
    assert hrp == text[: text.rfind("1")]
    assert _bech32.encode(hrp, data).lower() == text.lower()


@pytest.mark.parametrize("text", BIP173_INVALID)
def test_bech32_bip173_invalid_strings_are_refused(text):
    with pytest.raises(KeyFormatError):
        _bech32.decode(text)


def test_bech32_bip173_checksum_of_a_known_string():
    # BIP 173: "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw" carries the
    # whole charset in order, i.e. data = 0, 1, ..., 31 as 5-bit groups.
    hrp, data = _bech32.decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")
    assert hrp == "abcdef"
    assert data == bytes.fromhex("00443214c74254b635cf84653a56d7c675be77df")


@pytest.mark.parametrize(
    ("salt", "info", "okm"),
    [
        # RFC 5869 A.1 (first 32 of the 42 output bytes: one Expand block)
        (
            bytes(range(13)),
            bytes(range(0xF0, 0xFA)),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf",
        ),
        # RFC 5869 A.3: empty salt and info
        (b"", b"", "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"),
    ],
)
def test_hkdf_sha256_rfc5869_vectors(salt, info, okm):
    assert _primitives.hkdf_sha256(b"\x0b" * 22, salt, info).hex() == okm


def test_x25519_identity_derives_the_rfc7748_public_key():
    # RFC 7748 6.1: Alice's private key and public key.
    secret = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    public = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert age.X25519Identity(secret).recipient == age.X25519Recipient(public)


# -- Hypothesis properties ----------------------------------------------------

# Plaintext sizes: mostly small, often right at a chunk boundary, up to ~200 KB.
_boundary_sizes = st.sampled_from(
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK - 1, 3 * CHUNK, 3 * CHUNK + 1]
)
_sizes = st.one_of(st.integers(0, 300), _boundary_sizes, st.integers(0, 3 * CHUNK + 10))


@st.composite
def plaintexts(draw) -> bytes:
    return random_bytes(draw(_sizes), draw(st.integers(0, 2**32)))


def _property_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


@_property_settings(100)
@given(plaintext=plaintexts(), kind=st.sampled_from(sorted(KINDS)), armor=st.booleans())
def test_property_decrypt_inverts_encrypt(plaintext, kind, armor):
    recipients, identities = KINDS[kind]()
    ciphertext = age.encrypt_bytes(plaintext, recipients, armor=armor)
    for identity in identities:
        assert age.decrypt_bytes(ciphertext, [identity], armor=armor) == plaintext


def _tamper_target(kind: str) -> tuple[list, list]:
    if kind == "scrypt":
        # log_n 2: every single-bit flip of "2" gives "3", "6" or an invalid
        # number, so no flip makes one example cost an expensive scrypt.
        return [age.ScryptRecipient(PASSPHRASE, log_n=2)], [age.ScryptIdentity(PASSPHRASE)]
    return KINDS[kind]()


@st.composite
def encrypted_files(draw) -> tuple[bytes, list, bool]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    armor = draw(st.booleans())
    recipients, identities = _tamper_target(kind)
    plaintext = draw(plaintexts())
    return age.encrypt_bytes(plaintext, recipients, armor=armor), identities, armor


@_property_settings(200)
@given(file=encrypted_files(), data=st.data())
def test_property_any_single_bit_flip_is_detected(file, data):
    ciphertext, identities, armor = file
    bits = len(ciphertext) * 8
    # Half the draws land in the first 2 KiB (header, armor, first chunk),
    # where the most distinct code paths are.
    index = data.draw(
        st.one_of(st.integers(0, min(bits, 2048 * 8) - 1), st.integers(0, bits - 1)), label="bit"
    )
    tampered = bytearray(ciphertext)
    tampered[index // 8] ^= 1 << (index % 8)
    with pytest.raises(AgeError):
        age.decrypt_bytes(bytes(tampered), identities, armor=armor)


@_property_settings(100)
@given(file=encrypted_files(), data=st.data())
def test_property_any_truncation_is_detected(file, data):
    ciphertext, identities, armor = file
    # An armored file without its final newline is still a valid armored
    # file (trailing whitespace is optional), so cut at least one more byte.
    longest = len(ciphertext) - (2 if armor else 1)
    cut = data.draw(st.integers(0, longest), label="cut")
    with pytest.raises(AgeError):
        age.decrypt_bytes(ciphertext[:cut], identities, armor=armor)


_vchar_arg = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=1, max_size=24)
_stanzas = st.builds(
    age.Stanza,
    type=_vchar_arg,
    args=st.lists(_vchar_arg, max_size=_format.MAX_ARGS - 1).map(tuple),
    body=st.binary(max_size=200),
)


@settings(max_examples=300, deadline=None)
@given(
    stanzas=st.lists(_stanzas, min_size=1, max_size=6).map(tuple),
    mac=st.binary(min_size=32, max_size=32),
    payload=st.binary(max_size=40),
)
def test_property_parsed_header_re_serialises_to_the_same_bytes(stanzas, mac, payload):
    encoded = age.Header(stanzas, mac).marshal()
    src = io.BytesIO(encoded + payload)
    parsed = age.parse_header(src)
    assert parsed.marshal() == encoded
    assert parsed == age.Header(stanzas, mac)
    assert src.read() == payload  # left at the first payload byte


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_property_armor_writer_then_reader_is_identity(data, cuts):
    out = io.BytesIO()
    writer = ArmorWriter(out)
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for start, end in itertools.pairwise(bounds):
        writer.write(data[start:end])  # written in arbitrary pieces
    writer.close()
    armored = out.getvalue()
    assert armored.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert armored.endswith(b"-----END AGE ENCRYPTED FILE-----\n")
    assert all(len(line) <= 64 for line in armored.splitlines())
    assert armored_reader(io.BytesIO(armored)).read() == data


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["x25519", "hybrid"]), data=st.data())
def test_property_any_single_character_change_in_a_recipient_is_refused(kind, data):
    # bech32 detects every substitution of up to four characters in strings
    # of age's length; a typo must never yield another valid key.
    text = str((X1 if kind == "x25519" else H1).recipient)
    pos = data.draw(st.integers(len("age1pq1" if kind == "hybrid" else "age1"), len(text) - 1))
    char = data.draw(st.sampled_from([c for c in _bech32._CHARSET if c != text[pos]]))
    with pytest.raises(KeyFormatError):
        age.parse_recipient(text[:pos] + char + text[pos + 1 :])


# -- round trips and the chunk structure --------------------------------------

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK - 1, 3 * CHUNK, 3 * CHUNK + 1]


# Armor is a separate layer: fewer sizes suffice for it.
ROUND_TRIP_CASES = [(size, False) for size in SIZES] + [(size, True) for size in (0, CHUNK, 3 * CHUNK + 1)]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("size", "armor"), ROUND_TRIP_CASES)
def test_round_trip_at_chunk_boundaries(size, kind, armor):
    plaintext = random_bytes(size, seed=size)
    recipients, identities = KINDS[kind]()
    ciphertext = age.encrypt_bytes(plaintext, recipients, armor=armor)
    assert age.is_armored(io.BufferedReader(io.BytesIO(ciphertext))) is armor
    for identity in identities:
        assert age.decrypt_bytes(ciphertext, [identity], armor=armor) == plaintext
        # the identity that matches need not come first
        others = [X3 if identity is not X3 else X2, age.ScryptIdentity("other")]
        assert age.decrypt_bytes(ciphertext, [*others, identity], armor=armor) == plaintext


@pytest.mark.parametrize("size", SIZES)
def test_ciphertext_is_header_nonce_and_one_tag_per_chunk(size):
    ciphertext = age.encrypt_bytes(bytes(size), [X1.recipient])
    chunks = max(1, -(-size // CHUNK))  # an empty payload is one empty chunk
    assert len(ciphertext) == header_length(ciphertext) + NONCE + chunks * TAG + size


@pytest.mark.parametrize("size", [0, CHUNK, 3 * CHUNK + 1])
def test_open_payload_yields_one_chunk_per_64_kib(size):
    plaintext = random_bytes(size, seed=7)
    ciphertext = age.encrypt_bytes(plaintext, [X1.recipient])
    chunks = list(age.open_payload(io.BytesIO(ciphertext), [X1]))
    assert b"".join(chunks) == plaintext
    assert [len(c) for c in chunks[:-1]] == [CHUNK] * (len(chunks) - 1)
    assert len(chunks) == max(1, -(-size // CHUNK))


def test_encrypting_twice_gives_unrelated_files():
    first = age.encrypt_bytes(b"same plaintext", [X1.recipient])
    second = age.encrypt_bytes(b"same plaintext", [X1.recipient])
    assert first != second
    assert first[-30:] != second[-30:]  # fresh file key and nonce, not just a fresh header


def test_stream_api_reads_and_writes_file_objects(tmp_path):
    plaintext = random_bytes(2 * CHUNK + 5, seed=3)
    (tmp_path / "in").write_bytes(plaintext)
    with open(tmp_path / "in", "rb") as src, open(tmp_path / "enc", "wb") as dst:
        age.encrypt(src, dst, [H1.recipient], armor=True)
    with open(tmp_path / "enc", "rb") as src, open(tmp_path / "out", "wb") as dst:
        age.decrypt(src, dst, [H1], armor=True)
    assert (tmp_path / "out").read_bytes() == plaintext


def test_data_after_the_final_chunk_is_a_payload_error():
    ciphertext = age.encrypt_bytes(b"x" * 100, [X1.recipient])
    with pytest.raises(age.PayloadError):
        age.decrypt_bytes(ciphertext + b"\x00", [X1])


def test_dropping_a_whole_chunk_is_a_payload_error():
    ciphertext = age.encrypt_bytes(bytes(3 * CHUNK + 1), [X1.recipient])
    start = header_length(ciphertext) + NONCE
    sealed = CHUNK + TAG
    without_second = ciphertext[: start + sealed] + ciphertext[start + 2 * sealed :]
    with pytest.raises(age.PayloadError):
        age.decrypt_bytes(without_second, [X1])


class FailingSource(io.RawIOBase):
    """Two full chunks of zeros, then an I/O error (a disk or a network gone)."""

    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.reads += 1
        if self.reads > 2:
            raise OSError("source failed")
        memoryview(buffer)[:] = bytes(len(buffer))
        return len(buffer)


def test_failed_armored_encryption_does_not_close_the_armor_block():
    # Nothing half-done may look done: after a failure the output must not
    # gain an END line later (for instance when the writer is collected).
    dst = io.BytesIO()
    with pytest.raises(OSError):
        age.encrypt(FailingSource(), dst, [X1.recipient], armor=True)
    gc.collect()
    assert b"-----END AGE ENCRYPTED FILE-----" not in dst.getvalue()


# -- recipient rules ----------------------------------------------------------


@pytest.mark.parametrize(
    "recipients",
    [
        pytest.param(list, id="none"),
        pytest.param(lambda: [fresh_scrypt(), X1.recipient], id="scrypt+x25519"),
        pytest.param(lambda: [X1.recipient, fresh_scrypt()], id="x25519+scrypt"),
        pytest.param(lambda: [fresh_scrypt(), fresh_scrypt()], id="scrypt+scrypt"),
        pytest.param(lambda: [H1.recipient, X1.recipient], id="hybrid+x25519"),
        pytest.param(lambda: [X1.recipient, H1.recipient], id="x25519+hybrid"),
    ],
)
@pytest.mark.parametrize("armor", [False, True])
def test_invalid_recipient_sets_are_refused_before_writing(recipients, armor):
    dst = io.BytesIO()
    with pytest.raises(ValueError):
        age.encrypt(io.BytesIO(b"plaintext"), dst, recipients(), armor=armor)
    assert dst.getvalue() == b""


@pytest.mark.parametrize("log_n", [0, age_scrypt.MAX_LOG_N + 1])
def test_scrypt_recipient_refuses_work_factors_out_of_range(log_n):
    with pytest.raises(ValueError):
        age.ScryptRecipient(PASSPHRASE, log_n=log_n)


def test_scrypt_recipient_refuses_an_empty_passphrase():
    with pytest.raises(ValueError):
        age.ScryptRecipient("")


def _scrypt_file(log_n: int) -> bytes:
    """A syntactically valid scrypt file with any work factor, never computed."""
    stanza = age.Stanza("scrypt", (_format.b64encode(bytes(16)).decode(), str(log_n)), bytes(32))
    return age.Header((stanza,), bytes(32)).marshal() + bytes(NONCE + TAG)


@pytest.mark.parametrize("log_n", [age_scrypt.MAX_LOG_N + 1, 40, 999])
def test_scrypt_work_factor_above_the_limit_is_refused_when_opening(log_n):
    # If the limit were not checked first, this would try to allocate
    # gigabytes; the error must come from parsing, not from scrypt.
    with pytest.raises(age.HeaderError):
        age.decrypt_bytes(_scrypt_file(log_n), [age.ScryptIdentity(PASSPHRASE)])


def test_scrypt_identity_applies_its_own_lower_limit():
    ciphertext = age.encrypt_bytes(b"x", [fresh_scrypt(log_n=12)])
    with pytest.raises(age.HeaderError):
        age.decrypt_bytes(ciphertext, [age.ScryptIdentity(PASSPHRASE, max_log_n=11)])
    assert age.decrypt_bytes(ciphertext, [age.ScryptIdentity(PASSPHRASE, max_log_n=12)]) == b"x"


def test_scrypt_stanza_beside_another_stanza_is_refused_when_opening():
    scrypt_stanza = age.parse_header(io.BytesIO(age.encrypt_bytes(b"x", [fresh_scrypt()]))).stanzas[
        0
    ]
    x25519_stanza = age.parse_header(io.BytesIO(age.encrypt_bytes(b"x", [X1.recipient]))).stanzas[0]
    forged = age.Header((x25519_stanza, scrypt_stanza), bytes(32)).marshal() + bytes(NONCE + TAG)
    with pytest.raises(age.HeaderError):
        age.decrypt_bytes(forged, [age.ScryptIdentity(PASSPHRASE)])


# -- wrong keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "wrong"),
    [
        ("x25519", lambda: [X2]),
        ("x25519", lambda: [age.ScryptIdentity(PASSPHRASE)]),
        ("x25519", lambda: [H1]),
        ("hybrid", lambda: [H2]),
        ("hybrid", lambda: [X1]),
        ("scrypt", lambda: [age.ScryptIdentity("not the passphrase")]),
        ("scrypt", lambda: [X1, H1]),
        ("x25519-many", lambda: [age.X25519Identity.generate(), H2]),
    ],
)
def test_wrong_identity_is_no_identity_match(kind, wrong):
    recipients, _ = KINDS[kind]()
    ciphertext = age.encrypt_bytes(b"secret", recipients)
    with pytest.raises(age.NoIdentityMatchError):
        age.decrypt_bytes(ciphertext, wrong())


def test_no_identities_at_all_is_no_identity_match():
    with pytest.raises(age.NoIdentityMatchError):
        age.decrypt_bytes(age.encrypt_bytes(b"secret", [X1.recipient]), [])


def test_header_mac_is_checked_before_any_payload_is_read():
    ciphertext = age.encrypt_bytes(b"secret", [X1.recipient])
    src = io.BytesIO(ciphertext)
    header = age.parse_header(src)
    payload = src.read()
    bad_mac = bytes([header.mac[0] ^ 0x01]) + header.mac[1:]
    forged = age.Header(header.stanzas, bad_mac).marshal() + payload
    # open_payload raises itself, before handing out an iterator of plaintext
    with pytest.raises(age.HeaderMACError):
        age.open_payload(io.BytesIO(forged), [X1])
    rebuilt = age.Header(header.stanzas, header.mac).marshal() + payload
    assert age.decrypt_bytes(rebuilt, [X1]) == b"secret"  # the control: only the MAC differs


# -- limits on untrusted headers --------------------------------------------------


def _stanza(i: int = 0) -> age.Stanza:
    return age.Stanza("x", (str(i),), b"")


def test_header_with_max_stanzas_parses():
    stanzas = tuple(_stanza(i) for i in range(_format.MAX_STANZAS))
    header = age.Header(stanzas, bytes(32)).marshal()
    assert len(age.parse_header(io.BytesIO(header)).stanzas) == _format.MAX_STANZAS


def test_header_with_more_than_max_stanzas_is_refused():
    stanzas = tuple(_stanza(i) for i in range(_format.MAX_STANZAS + 1))
    header = age.Header(stanzas, bytes(32)).marshal()
    with pytest.raises(age.HeaderError):
        age.parse_header(io.BytesIO(header))
    with pytest.raises(age.HeaderError):
        age.decrypt_bytes(header + bytes(NONCE + TAG), [X1])


def test_stanza_with_too_many_arguments_is_refused():
    ok = age.Stanza("x", ("a", "b", "c"), b"")
    too_many = age.Stanza("x", tuple("a" * (i + 1) for i in range(_format.MAX_ARGS)), b"")
    assert age.parse_header(io.BytesIO(age.Header((ok,), bytes(32)).marshal())).stanzas == (ok,)
    with pytest.raises(age.HeaderError):
        age.parse_header(io.BytesIO(age.Header((too_many,), bytes(32)).marshal()))


def _header_of_size(size: int) -> bytes:
    """A valid header of exactly *size* bytes (one stanza, padded in its argument)."""
    base = len(age.Header((age.Stanza("x", ("a",), b""),), bytes(32)).marshal())
    return age.Header((age.Stanza("x", ("a" * (1 + size - base),), b""),), bytes(32)).marshal()


def test_header_of_exactly_max_header_size_parses():
    header = _header_of_size(_format.MAX_HEADER_SIZE)
    assert len(header) == _format.MAX_HEADER_SIZE
    assert age.parse_header(io.BytesIO(header)).marshal() == header


def test_header_one_byte_over_max_header_size_is_refused():
    header = _header_of_size(_format.MAX_HEADER_SIZE + 1)
    assert len(header) == _format.MAX_HEADER_SIZE + 1
    with pytest.raises(age.HeaderError):
        age.parse_header(io.BytesIO(header))


class EndlessStream(io.RawIOBase):
    """A raw stream of *prefix* then *unit* repeated forever; counts what was read."""

    def __init__(self, prefix: bytes, unit: bytes) -> None:
        self._pending = prefix
        self._unit = unit
        self.delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self._pending) < len(buffer):
            self._pending += self._unit * (len(buffer) // len(self._unit) + 1)
        n = len(buffer)
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.delivered += n
        return n


ENDLESS_HEADERS = {
    "endless stanza body": (b"age-encryption.org/v1\n-> x\n", b"A" * 64 + b"\n"),
    "endless argument line": (b"age-encryption.org/v1\n-> x ", b"A"),
    "endless empty stanzas": (b"age-encryption.org/v1\n", b"-> " + b"a" * 4000 + b"\n\n"),
}


@pytest.mark.parametrize("name", sorted(ENDLESS_HEADERS))
def test_endless_header_is_refused_after_a_bounded_read(name):
    stream = EndlessStream(*ENDLESS_HEADERS[name])
    with pytest.raises(age.HeaderError):
        age.parse_header(io.BufferedReader(stream, buffer_size=8192))
    assert stream.delivered <= _format.MAX_HEADER_SIZE + 8192


@pytest.mark.parametrize("name", sorted(ENDLESS_HEADERS))
def test_decrypt_of_an_endless_header_stops_early(name):
    stream = EndlessStream(*ENDLESS_HEADERS[name])
    with pytest.raises(age.HeaderError):
        age.decrypt(stream, io.BytesIO(), [X1])
    # decrypt may buffer, but must stop within a few header sizes of input
    assert stream.delivered <= 3 * _format.MAX_HEADER_SIZE


def test_endless_whitespace_before_armor_is_refused_after_a_bounded_read():
    stream = EndlessStream(b"", b" \n")
    with pytest.raises(age.ArmorError):
        age.decrypt(stream, io.BytesIO(), [X1], armor=True)
    assert stream.delivered <= 1 << 20


# -- keys: string forms and their errors --------------------------------------------


@pytest.mark.parametrize("recipient", [X1.recipient, H1.recipient], ids=["x25519", "hybrid"])
def test_recipient_string_round_trips(recipient):
    text = str(recipient)
    assert text.startswith("age1pq1" if recipient.post_quantum else "age1")
    assert text == text.lower()
    assert age.parse_recipient(text) == recipient
    assert type(recipient).parse(text) == recipient
    assert hash(age.parse_recipient(text)) == hash(recipient)


@pytest.mark.parametrize("identity", [X1, H1], ids=["x25519", "hybrid"])
def test_identity_string_round_trips(identity):
    text = identity.secret_string()
    assert text.startswith(
        "AGE-SECRET-KEY-PQ-1" if isinstance(identity, age.HybridIdentity) else "AGE-SECRET-KEY-1"
    )
    assert text == text.upper()
    parsed = age.parse_identity(text)
    assert type(parsed) is type(identity)
    assert parsed.secret_string() == text
    assert parsed.recipient == identity.recipient
    ciphertext = age.encrypt_bytes(b"round trip", [identity.recipient])
    assert age.decrypt_bytes(ciphertext, [parsed]) == b"round trip"


def test_distinct_keys_are_not_equal():
    assert X1.recipient != X2.recipient
    assert H1.recipient != H2.recipient
    assert X1.recipient != str(X1.recipient)


def _mixed_case(text: str) -> str:
    i = next(i for i, c in enumerate(text) if i > 4 and c.isalpha())
    return text[:i] + (text[i].swapcase()) + text[i + 1 :]


def _bad_checksum(text: str) -> str:
    last = text[-1]
    replacement = next(c for c in "qpzry9x8" if c != last.lower())
    return text[:-1] + (replacement.upper() if last.isupper() else replacement)


@pytest.mark.parametrize("parse", [age.parse_recipient, age.parse_identity])
@pytest.mark.parametrize("key", ["x25519", "hybrid"])
@pytest.mark.parametrize("damage", [_mixed_case, _bad_checksum])
def test_damaged_key_strings_are_key_format_errors(parse, key, damage):
    identity = X1 if key == "x25519" else H1
    text = str(identity.recipient) if parse is age.parse_recipient else identity.secret_string()
    parse(text)  # undamaged, it parses
    with pytest.raises(KeyFormatError):
        parse(damage(text))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age1",
        "age",
        "ssh-ed25519 AAAA",
        "AGE-SECRET-KEY-1",
        str(X1.recipient)[:-1],
        str(X1.recipient) + "q",
    ],
    ids=["empty", "hrp-only", "no-separator", "ssh-key", "identity-hrp-only", "short", "long"],
)
def test_malformed_key_strings_are_key_format_errors(text):
    with pytest.raises(KeyFormatError):
        age.parse_recipient(text)
    with pytest.raises(KeyFormatError):
        age.parse_identity(text)


def test_key_types_are_not_interchangeable():
    x_pub, x_sec = str(X1.recipient), X1.secret_string()
    with pytest.raises(KeyFormatError):
        age.X25519Identity.parse(x_pub)
    with pytest.raises(KeyFormatError):
        age.X25519Recipient.parse(x_sec)
    with pytest.raises(KeyFormatError):
        age.HybridRecipient.parse(x_pub)
    with pytest.raises(KeyFormatError):
        age.X25519Recipient.parse(str(H1.recipient))
    with pytest.raises(KeyFormatError):
        age.HybridIdentity.parse(x_sec)


def test_identity_file_parses_keys_and_skips_comments():
    data = (
        f"# created: now\n# public key: {X1.recipient}\n{X1.secret_string()}\n\n"
        f"  {H1.secret_string()}  \r\n"
    ).encode()
    parsed = age.parse_identity_file(data)
    assert [i.recipient for i in parsed] == [X1.recipient, H1.recipient]


def test_identity_file_errors_name_the_line_never_the_key():
    damaged = _bad_checksum(X1.secret_string())
    data = f"# comment\n{X2.secret_string()}\n{damaged}\n".encode()
    with pytest.raises(KeyFormatError) as caught:
        age.parse_identity_file(data)
    message = str(caught.value)
    assert "3" in message
    assert damaged[len("AGE-SECRET-KEY-1") :][:8] not in message
    assert X2.secret_string()[len("AGE-SECRET-KEY-1") :][:8] not in message


def test_identity_file_without_identities_is_refused():
    with pytest.raises(KeyFormatError):
        age.parse_identity_file(b"# only a comment\n\n")


# -- secrets never leak ------------------------------------------------------------


def _user_keys(post_quantum: bool) -> keyfile.UserKeys:
    return keyfile.UserKeys.generate(post_quantum=post_quantum)


def _secret_fragments(obj) -> list[str]:
    """Strings that must not appear in any rendering of *obj*."""
    if isinstance(obj, (age.X25519Identity, age.HybridIdentity)):
        secret = obj.secret_string()
        data = secret.split("1", 1)[1]
        return [secret, data[:16], data[-16:], data.lower()[:16]]
    if isinstance(obj, keyfile.UserKeys):
        return [
            *_secret_fragments(obj.identity),
            obj.signing_key.encode(),
            obj.signing_key.encode()[-32:],
        ]
    return [PASSPHRASE, PASSPHRASE.encode().hex()]


SECRET_HOLDERS = {
    "x25519-identity": lambda: X1,
    "hybrid-identity": lambda: H1,
    "scrypt-recipient": lambda: fresh_scrypt(),
    "scrypt-identity": lambda: age.ScryptIdentity(PASSPHRASE),
    "user-keys": lambda: _user_keys(False),
    "user-keys-pq": lambda: _user_keys(True),
}


@pytest.mark.parametrize("name", sorted(SECRET_HOLDERS))
def test_secrets_are_absent_from_repr_and_str(name):
    obj = SECRET_HOLDERS[name]()
    renderings = [repr(obj), str(obj), f"{obj!r}", repr([obj]), repr({"k": obj})]
    for fragment in _secret_fragments(obj):
        for text in renderings:
            assert fragment not in text, f"{name}: secret visible in {text!r}"


def test_identity_repr_names_the_public_key():
    assert str(X1.recipient) in repr(X1)
    assert str(H1.recipient)[:20] in repr(H1)


def _raw_secrets(obj) -> list[bytes]:
    if isinstance(obj, (age.X25519Identity, age.HybridIdentity)):
        return [_bech32.decode(obj.secret_string())[1], obj.secret_string().encode()]
    if isinstance(obj, keyfile.UserKeys):
        return [*_raw_secrets(obj.identity), obj.signing_key.encode().encode()]
    return [PASSPHRASE.encode()]


@pytest.mark.parametrize("name", sorted(SECRET_HOLDERS))
def test_secrets_are_absent_from_pickles(name):
    # STYLE habit 8: not in pickles. Refusing to pickle (as SigningKey does)
    # is fine; a pickle that carries the secret is not.
    obj = SECRET_HOLDERS[name]()
    try:
        data = pickle.dumps(obj)
    except (TypeError, pickle.PicklingError):
        return
    for secret in _raw_secrets(obj):
        assert secret not in data, f"{name}: the pickle carries the secret"


# -- key files ----------------------------------------------------------------------


@pytest.mark.parametrize("post_quantum", [False, True])
def test_key_file_seal_and_open_round_trip(post_quantum):
    keys = keyfile.UserKeys.generate(post_quantum=post_quantum)
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    sealed = keyfile.seal(keys, PASSPHRASE, created=created, log_n=FAST_LOG_N)
    assert sealed.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert keys.identity.secret_string().encode() not in sealed
    opened = keyfile.open_sealed(sealed, PASSPHRASE)
    assert opened.recipient == keys.recipient
    assert opened.identity.secret_string() == keys.identity.secret_string()
    assert opened.signing_key == keys.signing_key
    # the plaintext is an age identity file with the creation time as a comment
    plain = age.decrypt_bytes(sealed, [age.ScryptIdentity(PASSPHRASE)], armor=True)
    assert b"# created: 2026-01-02T03:04:05Z\n" in plain
    assert [i.recipient for i in age.parse_identity_file(plain)] == [keys.identity.recipient]


def test_key_file_with_wrong_passphrase_is_no_identity_match():
    keys = keyfile.UserKeys.generate()
    sealed = keyfile.seal(keys, PASSPHRASE, created=datetime.now(UTC), log_n=FAST_LOG_N)
    with pytest.raises(age.NoIdentityMatchError):
        keyfile.open_sealed(sealed, "wrong")


def test_key_file_parse_refuses_a_plain_identity_file():
    with pytest.raises(KeyFormatError):
        keyfile.parse(f"{X1.secret_string()}\n".encode())


# -- constant memory -------------------------------------------------------------

LARGE = 200 << 20  # 200 MiB: ~0.5 s to encrypt, with tracemalloc on
BASE_BUDGET = (1 << 20) + (256 << 10)  # "~1 MiB": a few 64 KiB chunks and buffers
# ...plus the batches one encryption or decryption may hold on their way
# through its threads: the bound the pipeline declares, whatever the size.
_IN_FLIGHT = _pipeline.default_workers() * _pipeline.BATCHES_IN_FLIGHT_PER_WORKER
_BATCH = _stream.BATCH_CHUNKS * CHUNK
PIPELINE_BUFFERS = (_IN_FLIGHT + 2) * (_BATCH + _stream.BATCH_CHUNKS * TAG) + _IN_FLIGHT * _BATCH
MEMORY_BUDGET = BASE_BUDGET + PIPELINE_BUFFERS
ROUND_TRIP_BUDGET = BASE_BUDGET + 2 * PIPELINE_BUFFERS  # encrypting and decrypting at once
ZERO_CHUNK = bytes(CHUNK)


class Zeros(io.RawIOBase):
    """*size* zero bytes, produced on demand and never stored."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        memoryview(buffer)[:n] = bytes(n)
        self.left -= n
        return n


class Discard:
    """A sink that keeps only a count (and checks the bytes are zeros, if asked)."""

    def __init__(self, *, expect_zeros: bool = False) -> None:
        self.count = 0
        self.expect_zeros = expect_zeros
        self.all_zero = True

    def write(self, data) -> int:
        view = memoryview(data)
        if self.expect_zeros:  # a chunk at a time: copying a whole batch would count as ours
            for start in range(0, len(view), CHUNK):
                if bytes(view[start:start + CHUNK]) != ZERO_CHUNK[:len(view) - start]:
                    self.all_zero = False
        self.count += len(view)
        return len(view)


def _peak(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_encrypt_streams_in_constant_memory():
    sink = Discard()
    peak = _peak(lambda: age.encrypt(Zeros(LARGE), sink, [X1.recipient]))
    chunks = LARGE // CHUNK
    assert sink.count == header_length_of_x25519() + NONCE + chunks * TAG + LARGE
    assert peak < MEMORY_BUDGET, f"peak {peak} bytes"


def header_length_of_x25519() -> int:
    return header_length(age.encrypt_bytes(b"", [X1.recipient]))


def _round_trip_through_a_pipe(size: int, sink: Discard, *, armor: bool = False) -> None:
    """Encrypt zeros in a thread into a pipe; decrypt from the pipe's raw end."""
    read_fd, write_fd = os.pipe()
    failure: list[Exception] = []

    def produce() -> None:
        try:
            with open(write_fd, "wb", buffering=0) as out:
                age.encrypt(Zeros(size), out, [X1.recipient], armor=armor)
        except Exception as exc:  # noqa: BLE001 - any failure is reported by the main thread
            failure.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        with open(read_fd, "rb", buffering=0) as src:  # raw FileIO: decrypt must buffer
            age.decrypt(src, sink, [X1], armor=armor)
    finally:
        producer.join()
    assert not failure, failure


def test_decrypt_streams_in_constant_memory():
    small, large = Discard(expect_zeros=True), Discard(expect_zeros=True)
    peak_small = _peak(lambda: _round_trip_through_a_pipe(LARGE // 10, small))
    peak_large = _peak(lambda: _round_trip_through_a_pipe(LARGE, large))
    assert (small.count, large.count) == (LARGE // 10, LARGE)
    assert small.all_zero and large.all_zero
    # constant: ten times the input costs no more memory...
    assert peak_large <= peak_small + (64 << 10), (peak_small, peak_large)
    # ...and the constant is what the pipeline declares
    assert peak_large < ROUND_TRIP_BUDGET, f"peak {peak_large} bytes"


def test_armored_round_trip_streams_in_constant_memory():
    size = 1 << 20  # smaller: armor decodes line by line, slowly under tracemalloc
    sink = Discard(expect_zeros=True)
    peak = _peak(lambda: _round_trip_through_a_pipe(size, sink, armor=True))
    assert sink.count == size and sink.all_zero
    assert peak < ROUND_TRIP_BUDGET, f"peak {peak} bytes"
