"""Waiting in tests for something real to happen, without racing the wall clock.

A test that sleeps a fixed time and then looks fails on a loaded machine (the
thing was not done yet) or passes without testing anything (it was done long
before). Poll the condition instead, with a deadline far beyond any healthy
wait: only a real hang reaches it, and then the message says what never
happened::

    latest = await eventually(lambda: store.read(ledger.latest_checkpoint),
                              what="a checkpoint from the background job")
    wait_until(lambda: pipe_is_empty(fd), what="the child read its first bytes")

Where the code under test takes a clock, pass one in rather than waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Seconds before giving up: far past any healthy wait (the slowest, a background
# job that polls once a second, takes about 2 s), so load alone never trips it.
DEADLINE = 60.0
# Seconds between two looks: short next to any wait, long enough not to spin.
INTERVAL = 0.05


def wait_until(condition: Callable[[], T], *, what: str, deadline: float = DEADLINE) -> T:
    """Call *condition* until it returns something truthy, and return that.

    Raises AssertionError naming *what* if *deadline* seconds pass first.
    """
    give_up = time.monotonic() + deadline
    while not (result := condition()):
        if time.monotonic() > give_up:
            raise AssertionError(f"waited {deadline:.0f} s for {what}; it never happened")
        time.sleep(INTERVAL)
    return result


async def eventually(condition: Callable[[], Awaitable[T]], *, what: str, deadline: float = DEADLINE) -> T:
    """:func:`wait_until` for an async *condition*, sleeping on the event loop between looks."""
    give_up = time.monotonic() + deadline
    while not (result := await condition()):
        if time.monotonic() > give_up:
            raise AssertionError(f"waited {deadline:.0f} s for {what}; it never happened")
        await asyncio.sleep(INTERVAL)
    return result
