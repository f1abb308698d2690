"""Passwords (Argon2id) and TOTP second factors (RFC 6238) for people who sign in.

:class:`Hasher` hashes and verifies passwords with argon2-cffi's recommended
parameters (RFC 9106's second recommendation: Argon2id, t=3, 64 MiB, p=4), on
worker threads, at most :data:`MAX_CONCURRENT_HASHES` at a time: each costs
64 MiB and most of a core, so a burst of sign-ins queues instead of
exhausting the machine. Verifying against :meth:`Hasher.verify_dummy` costs the
same as a real check, so an unknown e-mail answers as slowly as a wrong
password.

TOTP codes (6 digits, 30 s, SHA-1: what every authenticator app reads from
an ``otpauth://`` URI) are checked against the server's clock, one step
either side for clock drift; :func:`matching_step` returns the time step a
code belongs to, so that a code can be refused the second time it is used.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12  # characters: NIST SP 800-63B asks for at least 8; a second factor is not always set
MAX_PASSWORD_LENGTH = 1024  # characters: longer adds nothing but hashing work for whoever sends it
MAX_CONCURRENT_HASHES = 2  # Argon2id at 64 MiB each: bounds memory and CPU under a burst of sign-ins
TOTP_DIGITS = 6
TOTP_PERIOD = 30  # seconds per step (RFC 6238's default, what authenticator apps expect)
TOTP_DRIFT_STEPS = 1  # accept the previous and the next code too: phones' clocks drift
TOTP_ISSUER = "carebridge"  # shown by authenticator apps beside the account
# Verified instead of a real hash when the e-mail is unknown: a hash made with
# the library's current parameters, so it costs what a real check costs. Should
# the library's defaults change, Hasher makes a new one at first use.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$OoAHDMf8idUC6XHaeMHxvA$FGQjwJpltCRwQXHPgTxgkfAjU1RbC8+nHqd5np3CpLQ"
_DUMMY_PASSWORD = "carebridge dummy: verified when the e-mail is unknown"


class Hasher:
    """Argon2id password hashing off the event loop, with bounded concurrency."""

    def __init__(self) -> None:
        self._argon2 = PasswordHasher()  # the library's recommended (RFC 9106) parameters
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._dummy: str | None = None if self._argon2.check_needs_rehash(_DUMMY_HASH) else _DUMMY_HASH

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True if *password* matches *stored_hash*; False otherwise (also for a damaged hash)."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, password)

    async def verify_dummy(self, password: str) -> bool:
        """Spend what :meth:`verify` spends, for an unknown account; always False."""
        if self._dummy is None:
            self._dummy = await self.hash(_DUMMY_PASSWORD)
        await self.verify(self._dummy, password)
        return False

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def password_problem(password: str) -> str | None:
    """Why *password* cannot be used (for the person choosing it), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    if len(set(password)) < 4:
        return "a password needs more than three different characters"
    return None


def new_totp_secret() -> str:
    """A fresh TOTP secret: 160 random bits, base32 (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans (as a QR code) to add the account."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step of *code* at *now* (within the drift allowed), or None; constant-time compares."""
    code = code.strip()
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp, current = _totp(secret), int(now.timestamp()) // TOTP_PERIOD
    found = None
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
