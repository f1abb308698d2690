"""Sealed small secrets (crypto/sealed.py): XChaCha20-Poly1305 with associated data, one error for every failure."""

from __future__ import annotations

import pytest

from carebridge.crypto.errors import SealedValueError
from carebridge.crypto.sealed import KEY_PREFIX, MAX_PLAINTEXT, PREFIX, SealingKey, is_sealed


def test_a_value_opens_with_its_key_and_associated_data_only() -> None:
    key = SealingKey.generate()
    sealed = key.seal(b"JBSWY3DPEHPK3PXP", b"user:usr_one")
    assert is_sealed(sealed) and sealed.startswith(PREFIX)
    assert key.open(sealed, b"user:usr_one") == b"JBSWY3DPEHPK3PXP"
    assert b"JBSWY3DP" not in sealed.encode()
    for wrong_key, associated in ((key, b"user:usr_two"), (SealingKey.generate(), b"user:usr_one")):
        with pytest.raises(SealedValueError):
            wrong_key.open(sealed, associated)
    for broken in ("", PREFIX, PREFIX + "AAAA", "JBSWY3DPEHPK3PXP", sealed[:-1], sealed + "A" * 2 * MAX_PLAINTEXT):
        with pytest.raises(SealedValueError):
            key.open(broken, b"user:usr_one")


def test_the_same_nonce_gives_the_same_value_and_fresh_nonces_differ() -> None:
    key = SealingKey(bytes(range(32)))
    nonce = bytes(24)
    assert key.seal(b"secret", b"ad", nonce=nonce) == key.seal(b"secret", b"ad", nonce=nonce)
    assert key.seal(b"secret", b"ad") != key.seal(b"secret", b"ad")


def test_the_key_file_form_round_trips_and_never_shows_in_a_repr() -> None:
    key = SealingKey.generate()
    text = key.encode()
    assert text.startswith(KEY_PREFIX)
    again = SealingKey.parse(text + "\n")
    assert again.open(key.seal(b"x", b""), b"") == b"x"
    assert text.removeprefix(KEY_PREFIX) not in repr(key)
    for bad in ("", "cbsk1.", "cbsk1.AAAA", "sb1." + text.removeprefix(KEY_PREFIX), text + "AAAA"):
        with pytest.raises(SealedValueError):
            SealingKey.parse(bad)
    with pytest.raises(SealedValueError):
        key.seal(b"x" * (MAX_PLAINTEXT + 1), b"")
