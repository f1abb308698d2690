"""How the API reads and writes values that several handlers share: times, integers, small bodies.

The parsers answer a Refusal (422 ``invalid-request``) naming the parameter,
so a bad value fails before any byte of a response is sent; a body over its
limit is a 413.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .usecases.refusal import Refusal
from .vocabulary import Why

if TYPE_CHECKING:  # the use cases import this module and must not load aiohttp
    from aiohttp import web


async def small_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole body, or a 413 saying "*what* is at most *limit*" once it passes *limit* bytes.

    ``content.read(n)`` returns what has arrived, up to n bytes: one call
    would cut a body that comes in several pieces (then parse a prefix of it,
    or call a large body malformed), so read until the end or past the limit.
    """
    too_large = f"{what} is at most {size_text(limit)}"
    if request.content_length is not None and request.content_length > limit:
        raise Refusal(Why.payload_too_large, too_large)
    data = bytearray()
    while len(data) <= limit and (chunk := await request.content.read(limit + 1 - len(data))):
        data += chunk
    if len(data) > limit:
        raise Refusal(Why.payload_too_large, too_large)
    return bytes(data)


def size_text(size: int) -> str:
    """A limit in words: ``64 KiB`` when it is whole KiB, else ``300 bytes``."""
    return f"{size // 1024} KiB" if size and size % 1024 == 0 else f"{size} bytes"


def iso(moment: datetime | None) -> str | None:
    """A UTC time as the API writes it everywhere, ``YYYY-MM-DDTHH:MM:SSZ`` (None stays None)."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(text: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 time with a zone, in UTC; None for anything else.

    Converted now, so that a time at the calendar's edge (year 1 at +14:00)
    fails here rather than in a query or a comparison later.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.astimezone(timezone.utc) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def query_int(query: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int:
    """The integer query parameter *name* in low..high (*default* when absent; None: required).

    Only ASCII digits, and no more of them than *high* has: no int() of a
    10,000-digit string, no signs, no Unicode digits.
    """
    raw = query.get(name)
    if raw is None:
        if default is None:
            raise Refusal(Why.invalid_request, f"the query parameter {name} is required")
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        raise Refusal(Why.invalid_request, f"{name} must be an integer {low}..{high}")
    return int(raw)
