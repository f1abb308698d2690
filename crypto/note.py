"""C2SP signed notes (https://c2sp.org/signed-note) and tlog checkpoints, Ed25519 only.

A note is UTF-8 text signed by one or more keys::

    <text, one or more lines, each ending in U+000A>
    <blank line>
    — <key name> <base64(key ID || signature)>
    …

1. The text ends in a newline; the whole note is valid UTF-8 with no ASCII
   control character (below U+0020) other than newline. The text is
   separated from the signature lines by the *last* blank line.
2. Each signature line is U+2014 (em dash), a space, the key name, a space,
   and the standard base64 (RFC 4648 section 4, canonical, padded) of the
   4-byte big-endian key ID followed by the signature.
3. A key name is non-empty, with no Unicode space, no plus sign and no
   control character. The key ID of an Ed25519 key (signature type 0x01) is
   ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``; the
   signature is Ed25519 (RFC 8032) over the text, final newline included.
4. Opening a note checks it against known verifier keys: a signature whose
   (name, key ID) is unknown is kept as unverified (others may cosign);
   one from a known key must verify, or the whole note is rejected; and at
   least one known key must have signed.

Key strings, as in golang.org/x/mod/sumdb/note::

    verifier key  <name>+<8 lowercase hex key ID>+<base64(0x01 || public key)>
    signer key    PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>

A checkpoint (https://c2sp.org/tlog-checkpoint) is a note whose text is the
origin line, the tree size in decimal (no leading zeros), the base64 RFC 6962
root hash, then optional non-empty extension lines.

Every error is a :class:`~carebridge.crypto.errors.NoteError` naming the
problem; messages, reprs and pickles never carry a signer key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

import nacl.bindings
import nacl.exceptions
import nacl.signing
from carebridge.crypto.errors import NoteError
from carebridge.crypto.merkle import HASH_SIZE, MAX_TREE_SIZE

__all__ = [
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIGNATURE_TYPE_ED25519",
    "Checkpoint",
    "Note",
    "Signature",
    "Signer",
    "Verifier",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "sign_checkpoint",
    "sign_note",
]

SIGNATURE_TYPE_ED25519: Final = 0x01
# Room for the 16 signatures the spec requires us to accept even when they
# are ~5 kB post-quantum cosignatures, while bounding what we buffer.
MAX_NOTE_SIZE: Final = 256 * 1024
# Go's note.Open limit; parsing more is only work for an attacker.
MAX_SIGNATURES: Final = 100

_SIG_PREFIX: Final = "\u2014 "
_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_KEY_SIZE: Final = 32
_ED25519_SIG_SIZE: Final = 64
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_KEY_ID = re.compile("[0-9a-f]{8}")
_DECIMAL = re.compile("0|[1-9][0-9]{0,18}")


def _decode_base64(text: str) -> bytes | None:
    """Return the bytes of canonical padded base64, or None for anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Refuse stray low bits before the padding: one value, one spelling, so a
    # flipped bit can never leave a signature line meaning the same thing.
    return raw if _encode_base64(raw) == text else None


def _encode_base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _check_name(name: str) -> None:
    """Raise :class:`NoteError` unless ``name`` is a valid key name (step 3)."""
    if not isinstance(name, str) or not name:
        raise NoteError("key name is empty")
    if "+" in name or _CONTROL.search(name) or any(c.isspace() for c in name):
        raise NoteError("key name contains a space, plus sign or control character")
    if _SURROGATE.search(name):
        raise NoteError("key name is not valid Unicode")


def _key_id(name: str, public_key: bytes) -> int:
    data = name.encode() + b"\n" + bytes([SIGNATURE_TYPE_ED25519]) + public_key
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


def _split_key(text: str, what: str) -> tuple[str, int, bytes]:
    """Split ``name+keyid+base64(0x01 || key)`` and check the key ID's form."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"{what} is not name+keyid+key")
    name, key_id, encoded = parts
    _check_name(name)
    if not _KEY_ID.fullmatch(key_id):
        raise NoteError(f"{what} key ID is not 8 lowercase hex digits")
    raw = _decode_base64(encoded)
    if raw is None:
        raise NoteError(f"{what} key is not canonical base64")
    if len(raw) != 1 + _KEY_SIZE or raw[0] != SIGNATURE_TYPE_ED25519:
        raise NoteError(f"{what} is not an Ed25519 key (type 0x01, 32 bytes)")
    return name, int(key_id, 16), raw[1:]


class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    __slots__ = ("_key_id", "_nacl", "_name", "_public_key")

    def __init__(self, *, name: str, public_key: bytes) -> None:
        """Raises :class:`NoteError` for a bad name or an invalid or small-order key."""
        _check_name(name)
        if not isinstance(public_key, bytes) or len(public_key) != _KEY_SIZE:
            raise NoteError("an Ed25519 public key is 32 bytes")
        # Small-order keys accept forged signatures; libsodium flags them here.
        if not nacl.bindings.crypto_core_ed25519_is_valid_point(public_key):
            raise NoteError("not a valid Ed25519 public key")
        self._name = name
        self._key_id = _key_id(name, public_key)
        self._public_key = public_key
        self._nacl = nacl.signing.VerifyKey(public_key)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<keyid>+<base64>``; raises :class:`NoteError` naming the problem."""
        if not isinstance(vkey, str):
            raise NoteError("verifier key is not a string")
        name, key_id, public_key = _split_key(vkey, "verifier key")
        verifier = cls(name=name, public_key=public_key)
        if verifier.key_id != key_id:
            raise NoteError("verifier key ID does not match its name and key")
        return verifier

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        """The 32-bit key ID (step 3)."""
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def encode(self) -> str:
        """Return the verifier key string."""
        key = _encode_base64(bytes([SIGNATURE_TYPE_ED25519]) + self._public_key)
        return f"{self._name}+{self._key_id:08x}+{key}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._nacl.verify(message, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verifier):
            return NotImplemented
        return (self._name, self._public_key) == (other._name, other._public_key)

    def __hash__(self) -> int:
        return hash((Verifier, self._name, self._public_key))

    def __repr__(self) -> str:
        return f"Verifier({self.encode()!r})"


class Signer:
    """A named Ed25519 secret key that signs notes. Never printed or pickled."""

    __slots__ = ("_nacl", "_verifier")

    def __init__(self, *, name: str, seed: bytes) -> None:
        """Prefer :meth:`generate` or :meth:`parse`. Raises :class:`NoteError`."""
        if not isinstance(seed, bytes) or len(seed) != _KEY_SIZE:
            raise NoteError("an Ed25519 seed is 32 bytes")
        self._nacl = nacl.signing.SigningKey(seed)
        self._verifier = Verifier(name=name, public_key=bytes(self._nacl.verify_key))

    @classmethod
    def generate(cls, name: str) -> Signer:
        """Return a new key from the operating system's CSPRNG; raises :class:`NoteError` for a bad name."""
        return cls(name=name, seed=os.urandom(_KEY_SIZE))

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<keyid>+<base64>``; raises :class:`NoteError`.

        Messages never echo the input, which may be a real secret.
        """
        if not isinstance(skey, str) or not skey.startswith(_PRIVATE_PREFIX):
            raise NoteError(f"signer key does not start with {_PRIVATE_PREFIX!r}")
        name, key_id, seed = _split_key(skey[len(_PRIVATE_PREFIX) :], "signer key")
        signer = cls(name=name, seed=seed)
        # The key ID hashes the public key, so it can only be checked now.
        if signer.key_id != key_id:
            raise NoteError("signer key ID does not match its name and key")
        return signer

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> int:
        return self._verifier.key_id

    @property
    def verifier(self) -> Verifier:
        """The matching public verifier."""
        return self._verifier

    def encode(self) -> str:
        """Return the signer key string. It is a secret: write it only to a key file."""
        seed = _encode_base64(bytes([SIGNATURE_TYPE_ED25519]) + bytes(self._nacl))
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{seed}"

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._nacl.sign(message).signature

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickles end up in caches, queues and crash dumps.
        raise TypeError("Signer cannot be pickled")

    def __copy__(self) -> Signer:
        return self

    def __deepcopy__(self, memo: object) -> Signer:
        return self


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line of a note; ``base64`` is the encoded key ID and signature."""

    name: str
    key_id: int
    base64: str


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text, the verified signatures and the others."""

    text: str
    signatures: tuple[Signature, ...]
    unverified_signatures: tuple[Signature, ...]


def sign_note(text: str, *signers: Signer) -> bytes:
    """Return the signed note of ``text`` by each of ``signers``, in order.

    Raises :class:`NoteError` for text that is not a valid note text
    (steps 1 and 2), for no signers, or two with the same name and key ID.
    """
    _check_text(text)
    if not 1 <= len(signers) <= MAX_SIGNATURES:
        raise NoteError(f"a note needs 1 to {MAX_SIGNATURES} signers")
    if len({(s.name, s.key_id) for s in signers}) != len(signers):
        raise NoteError("two signers share a name and key ID")
    message = text.encode()
    lines = []
    for signer in signers:
        encoded = _encode_base64(signer.key_id.to_bytes(4, "big") + signer.sign(message))
        lines.append(f"{_SIG_PREFIX}{signer.name} {encoded}\n")
    note = message + b"\n" + "".join(lines).encode()
    if len(note) > MAX_NOTE_SIZE:
        raise NoteError(f"signed note is larger than {MAX_NOTE_SIZE} bytes")
    return note


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("note text does not end in a newline")
    if _CONTROL.search(text):
        raise NoteError("note text contains a control character")
    if _SURROGATE.search(text):
        raise NoteError("note text is not valid Unicode")


def open_note(msg: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse the signed note ``msg`` and check its signatures against ``verifiers``.

    Raises :class:`NoteError` if the note is malformed (steps 1 and 2), if a
    signature from a known key does not verify, or if no known key signed it.
    """
    text, lines = _split_note(msg)
    known = _index_verifiers(verifiers)
    message = text.encode()
    verified: dict[tuple[str, int], Signature] = {}
    unverified: dict[Signature, None] = {}  # a dict keeps order and drops repeats
    for line in lines:
        sig, raw = _parse_signature_line(line)
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified[sig] = None
        elif verifier.verify(message, raw):
            verified.setdefault((sig.name, sig.key_id), sig)
        else:
            raise NoteError(f"invalid signature by known key {sig.name}+{sig.key_id:08x}")
    if not verified:
        raise NoteError("note has no signature from a known key")
    return Note(
        text=text, signatures=tuple(verified.values()), unverified_signatures=tuple(unverified)
    )


def _split_note(msg: bytes) -> tuple[str, list[str]]:
    """Return a note's text and its signature lines (step 1)."""
    if len(msg) > MAX_NOTE_SIZE:
        raise NoteError(f"note is larger than {MAX_NOTE_SIZE} bytes")
    try:
        decoded = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not valid UTF-8") from None
    if _CONTROL.search(decoded):
        raise NoteError("note contains a control character")
    split = decoded.rfind("\n\n")
    if split < 0 or not decoded.endswith("\n") or split + 2 == len(decoded):
        raise NoteError("note has no signature lines after a blank line")
    lines = decoded[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return decoded[: split + 1], lines


def _index_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_id), v) != v:
            # Two keys with one name and ID: the key list itself is suspect.
            raise NoteError(f"ambiguous verifier keys for {v.name}+{v.key_id:08x}")
    return known


def _parse_signature_line(line: str) -> tuple[Signature, bytes]:
    """Return a signature line's fields and the raw signature (step 2)."""
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("signature line does not start with an em dash and a space")
    name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    _check_name(name)
    raw = _decode_base64(encoded) if space else None
    if raw is None or len(raw) < 5:
        raise NoteError(f"signature by {name} is not base64 of a key ID and a signature")
    return Signature(name=name, key_id=int.from_bytes(raw[:4], "big"), base64=encoded), raw[4:]


# -- checkpoints --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's signed tree head (c2sp.org/tlog-checkpoint); valid by construction.

    Raises :class:`NoteError` naming the field that is malformed.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(self.extensions))
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin is empty or not one line")
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError("checkpoint tree size out of range")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash is not {HASH_SIZE} bytes")
        for line in self.extensions:
            if not isinstance(line, str) or not line or "\n" in line:
                raise NoteError("checkpoint extension line is empty or not one line")
        _check_text(self.format())

    def format(self) -> str:
        """Return the note text: origin, size, root hash, extensions, one per line."""
        root = _encode_base64(self.root_hash)
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text; raises :class:`NoteError` naming the bad line."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("checkpoint does not end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, tree size and root hash lines")
    origin, size, root, *extensions = lines
    if not _DECIMAL.fullmatch(size):
        raise NoteError("checkpoint tree size is not a decimal without leading zeros")
    root_hash = _decode_base64(root)
    if root_hash is None:
        raise NoteError("checkpoint root hash is not canonical base64")
    return Checkpoint(
        origin=origin, size=int(size), root_hash=root_hash, extensions=tuple(extensions)
    )


def sign_checkpoint(checkpoint: Checkpoint, *signers: Signer) -> bytes:
    """Return ``checkpoint`` as a note signed by ``signers``; raises :class:`NoteError`."""
    return sign_note(checkpoint.format(), *signers)


def open_checkpoint(msg: bytes, verifier: Verifier, *, origin: str) -> Checkpoint:
    """Verify ``msg`` as signed by ``verifier``, parse it and check it is for ``origin``.

    Other signatures (cosigners, rotated keys) are ignored. Raises
    :class:`NoteError` for a bad signature, a malformed checkpoint, or one
    from another origin.
    """
    checkpoint = parse_checkpoint(open_note(msg, [verifier]).text)
    if checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for origin {checkpoint.origin!r}, want {origin!r}")
    return checkpoint
