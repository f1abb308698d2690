"""Lockouts and claim rates, on a fake monotonic clock."""

from __future__ import annotations

from datetime import timedelta

from carebridge.gateway.server.ratelimit import Lockouts, Rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_starts_at_the_limit_and_ends_after_its_duration() -> None:
    clock = Clock()
    lockouts = Lockouts(3, timedelta(minutes=5), timedelta(minutes=15), clock)
    assert [lockouts.fail("addr:a") for _ in range(3)] == [False, False, True]
    assert lockouts.retry_after("addr:a") == 900
    assert lockouts.retry_after("addr:b") is None  # keys are separate
    clock.now += 899
    assert lockouts.retry_after("addr:a") == 1
    clock.now += 1
    assert lockouts.retry_after("addr:a") is None


def test_failures_outside_the_window_do_not_count() -> None:
    clock = Clock()
    lockouts = Lockouts(3, timedelta(seconds=60), timedelta(seconds=60), clock)
    lockouts.fail("k")
    lockouts.fail("k")
    clock.now += 61
    assert lockouts.fail("k") is False
    assert lockouts.retry_after("k") is None


def test_rate_allows_a_burst_then_refills() -> None:
    clock = Clock()
    rate = Rate(60, clock)  # one a second
    assert all(rate.take("a") is None for _ in range(60))
    wait = rate.take("a")
    assert wait is not None and 0 < wait <= 1
    assert rate.take("b") is None
    clock.now += 1
    assert rate.take("a") is None
    assert rate.take("a") is not None
