"""Field checks and the one time format shared by the policy objects (private).

Every failure is a PolicyValidationError naming the field, never echoing the value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from carebridge.policies.errors import PolicyValidationError

__all__ = [
    "ID_PATTERN", "ID_TEXT", "MAX_ID_LENGTH", "TIME_TEXT",
    "check", "describe", "format_time", "is_aware", "is_id", "is_int", "is_utc", "parse_time",
]  # fmt: skip

# Opaque ids (never names or e-mail addresses: no PHI in policies or the log);
# the same shape as carebridge.crypto.manifest.ID_PATTERN, which signs them.
MAX_ID_LENGTH: Final = 128
ID_PATTERN: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:-]{{0,{MAX_ID_LENGTH - 1}}}")
ID_TEXT: Final = f"a user id (1-{MAX_ID_LENGTH} characters [A-Za-z0-9_.:-])"

# Upper-case T and Z, whole seconds: one spelling per instant, so one digest.
_TIME_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
TIME_TEXT: Final = "a UTC time YYYY-MM-DDTHH:MM:SSZ"


def is_id(value: object) -> bool:
    """Whether *value* is a str matching :data:`ID_PATTERN`."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def is_int(value: object, low: int, high: int) -> bool:
    """Whether *value* is an int (not a bool) from *low* to *high*."""
    # type() rather than isinstance(): True is an int to Python, not to a policy.
    return type(value) is int and low <= value <= high


def is_aware(value: object) -> bool:
    """Whether *value* is a datetime with a UTC offset (comparable to stored times)."""
    return isinstance(value, datetime) and value.utcoffset() is not None


def is_utc(value: object) -> bool:
    """Whether *value* is an aware datetime at UTC offset zero."""
    return isinstance(value, datetime) and value.utcoffset() == timedelta(0)


def check(ok: bool, name: str, problem: str) -> None:
    """Raise ``PolicyValidationError(name, problem)`` unless *ok*."""
    if not ok:
        raise PolicyValidationError(name, problem)


def format_time(value: datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (sub-seconds dropped)."""
    # isoformat() pads the year to four digits; strftime("%Y") may not.
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def parse_time(value: object, name: str) -> datetime:
    """``YYYY-MM-DDTHH:MM:SSZ`` to an aware UTC datetime; raises PolicyValidationError."""
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is not None:
            return datetime(*map(int, match.groups()), tzinfo=UTC)  # type: ignore[misc]
    except ValueError:  # month 13, 30 February, second 60, year 0 ...
        pass
    raise PolicyValidationError(name, f"must be {TIME_TEXT}")


def describe(span: timedelta) -> str:
    """A whole-second span for a message: ``"30 days"`` or ``"90 seconds"``."""
    seconds = int(span.total_seconds())
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds} seconds"
