"""Parsing recipients, identities and identity files, as the age CLI reads them."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import KeyFormatError
from .hybrid import HybridIdentity, HybridRecipient
from .x25519 import X25519Identity, X25519Recipient

AnyRecipient = X25519Recipient | HybridRecipient
AnyIdentity = X25519Identity | HybridIdentity

MAX_IDENTITY_FILE_SIZE = 1 << 20  # an identity file is a few lines; refuse more
MAX_IDENTITIES = 1024


def parse_recipient(text: str) -> AnyRecipient:
    """Parse an ``age1…`` or ``age1pq1…`` recipient; raises KeyFormatError."""
    if text.startswith("age1pq1"):
        return HybridRecipient.parse(text)
    if text.startswith("age1"):
        return X25519Recipient.parse(text)
    raise KeyFormatError("unknown recipient type (expected age1… or age1pq1…)")


def parse_identity(text: str) -> AnyIdentity:
    """Parse an ``AGE-SECRET-KEY-1…`` or ``AGE-SECRET-KEY-PQ-1…`` identity."""
    if text.startswith("AGE-SECRET-KEY-PQ-1"):
        return HybridIdentity.parse(text)
    if text.startswith("AGE-SECRET-KEY-1"):
        return X25519Identity.parse(text)
    raise KeyFormatError("unknown identity type (expected AGE-SECRET-KEY-1…)")


def parse_identity_file(data: bytes) -> list[AnyIdentity]:
    """Parse an identity file: one key a line; blank and ``#`` lines ignored.

    Errors name the line number, never the line (it may hold a secret).
    """
    return _parse_lines(data, parse_identity, "identity")


def parse_recipients_file(data: bytes) -> list[AnyRecipient]:
    """Parse a recipients file (age ``-R``): one recipient a line."""
    return _parse_lines(data, parse_recipient, "recipient")


def _parse_lines(data: bytes, parse: Callable[[str], object], what: str) -> list:
    if len(data) > MAX_IDENTITY_FILE_SIZE:
        raise KeyFormatError(f"{what} file larger than {MAX_IDENTITY_FILE_SIZE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(f"{what} file is not UTF-8 text") from None
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(parse(line))
        except KeyFormatError:
            raise KeyFormatError(f"{what} file line {number}: not a valid {what}") from None
        if len(found) > MAX_IDENTITIES:
            raise KeyFormatError(f"{what} file has more than {MAX_IDENTITIES} entries")
    if not found:
        raise KeyFormatError(f"{what} file contains no {what}")
    return found
