"""encrypt and decrypt: the header, the MAC and STREAM put together."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import BinaryIO, Protocol

from ..errors import HeaderError, HeaderMACError, NoIdentityMatchError, NotARecipient
from . import _primitives as p
from . import _stream
from ._format import Header, Stanza, parse_header
from .armor import ArmorWriter, armored_reader
from .armor import _Raw as _RawAdapter
from .scrypt import STANZA_TYPE as SCRYPT_TYPE
from .scrypt import ScryptRecipient

FILE_KEY_SIZE = 16  # spec: 128-bit file key
HEADER_INFO = b"header"  # HKDF info for the header MAC key (spec)
_READ_BUFFER = 1 << 16  # one STREAM chunk; more only adds resident memory


class Recipient(Protocol):
    """Wraps a file key into stanzas. ``post_quantum`` tells what it resists."""

    post_quantum: bool

    def wrap(self, file_key: bytes) -> list[Stanza]: ...


class Identity(Protocol):
    """Unwraps a file key, or raises NotARecipient to mean "try the next one"."""

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes: ...


def _header_mac(file_key: bytes, header: Header) -> bytes:
    key = p.hkdf_sha256(file_key, b"", HEADER_INFO)
    return p.hmac_sha256(key, header.marshal_without_mac())


def _check_recipient_mix(recipients: Sequence[Recipient]) -> None:
    if not recipients:
        raise ValueError("at least one recipient is required")
    if any(isinstance(r, ScryptRecipient) for r in recipients) and len(recipients) > 1:
        raise ValueError("a passphrase must be the only recipient of a file")
    if len({r.post_quantum for r in recipients}) > 1:
        raise ValueError("post-quantum and classical recipients cannot share a file:"
                         " the classical one would undo the protection")


def _write_header(dst: BinaryIO, recipients: Sequence[Recipient], file_key: bytes) -> None:
    stanzas = tuple(s for r in recipients for s in r.wrap(file_key))
    unsigned = Header(stanzas, b"")
    header = Header(stanzas, _header_mac(file_key, unsigned))
    dst.write(header.marshal())


def encrypt(src: BinaryIO, dst: BinaryIO, recipients: Sequence[Recipient], *,
            armor: bool = False) -> None:
    """Encrypt all of *src* into *dst* as one age file, in constant memory.

    As the io contract says, ``dst.write`` must not keep the object it is
    given past the call: its buffer is reused. Raises ValueError for an
    invalid recipient set (none; a passphrase beside another recipient;
    post-quantum beside classical).
    """
    _encrypt(src, dst, recipients, armor=armor,
             file_key=p.random_bytes(FILE_KEY_SIZE), nonce=p.random_bytes(_stream.NONCE_SIZE))


def _encrypt(src: BinaryIO, dst: BinaryIO, recipients: Sequence[Recipient], *,
             armor: bool, file_key: bytes, nonce: bytes, workers: int | None = None) -> None:
    """encrypt with the randomness supplied: the seam tests and vectors use.

    *workers*: threads that seal chunks (default one per core, 0 for none);
    the bytes written do not depend on it.
    """
    _check_recipient_mix(recipients)
    out: BinaryIO = ArmorWriter(dst) if armor else dst  # type: ignore[assignment]
    _write_header(out, recipients, file_key)
    out.write(nonce)
    _stream.encrypt_payload(_stream.payload_cipher(file_key, nonce), src, out, workers=workers)
    if armor:
        out.close()  # only now, after the last chunk: a failed encryption gets no END line


def encrypt_bytes(plaintext: bytes, recipients: Sequence[Recipient], *, armor: bool = False) -> bytes:
    dst = io.BytesIO()
    encrypt(io.BytesIO(plaintext), dst, recipients, armor=armor)
    return dst.getvalue()


def _unwrap(header: Header, identities: Sequence[Identity]) -> bytes:
    types = [s.type for s in header.stanzas]
    if SCRYPT_TYPE in types and len(types) > 1:
        raise HeaderError("an scrypt stanza must be alone in the header")
    for identity in identities:
        try:
            file_key = identity.unwrap(header.stanzas)
        except NotARecipient:
            continue
        if len(file_key) != FILE_KEY_SIZE:
            raise HeaderError("unwrapped file key has the wrong length")
        return file_key
    raise NoIdentityMatchError("no identity matched any of the file's recipients")


def open_payload(src: BinaryIO, identities: Sequence[Identity], *,
                 armor: bool = False) -> Iterator[bytes]:
    """Parse and authenticate the header, then yield plaintext chunk by chunk.

    Header problems raise before the first chunk: ArmorError, HeaderError,
    NoIdentityMatchError, HeaderMACError. PayloadError may come after some
    chunks were yielded; those were authenticated one by one, but the caller
    must discard them all, since the file as a whole is not.
    """
    cipher, reader = _open_header(src, identities, armor=armor)
    return _stream.decrypt_chunks(cipher, reader)


def _open_header(src: BinaryIO, identities: Sequence[Identity], *,
                 armor: bool) -> tuple[p.AEAD, BinaryIO]:
    """Steps up to the payload: parse, unwrap, check the MAC, read the nonce."""
    reader = armored_reader(src) if armor else _buffered(src)
    header = parse_header(reader)
    file_key = _unwrap(header, identities)
    if not p.constant_time_equal(_header_mac(file_key, header), header.mac):
        raise HeaderMACError("header MAC does not verify")
    nonce = _stream.read_full(reader, _stream.NONCE_SIZE)
    if len(nonce) != _stream.NONCE_SIZE:
        raise HeaderError("file ends before the payload nonce")
    return _stream.payload_cipher(file_key, nonce), reader


def decrypt(src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity], *,
            armor: bool = False) -> None:
    """Decrypt the age file in *src* into *dst*, in constant memory, on every core.

    ``dst.write`` must not keep the object it is given past the call (its
    buffer is reused). Raises the errors of :func:`open_payload`; *dst* may
    then hold a prefix of the plaintext, which the caller must discard.
    """
    cipher, reader = _open_header(src, identities, armor=armor)
    for batch in _stream.decrypt_payload(cipher, reader):
        dst.write(batch)


def decrypt_bytes(ciphertext: bytes, identities: Sequence[Identity], *, armor: bool = False) -> bytes:
    dst = io.BytesIO()
    decrypt(io.BytesIO(ciphertext), dst, identities, armor=armor)
    return dst.getvalue()


def _buffered(src: BinaryIO) -> BinaryIO:
    """The header parser needs ``readline``; give it buffering if *src* lacks it."""
    if isinstance(src, (io.BufferedIOBase, io.BytesIO)):
        return src
    return io.BufferedReader(_RawAdapter(src), buffer_size=_READ_BUFFER)
