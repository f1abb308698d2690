"""Prometheus metrics of one gateway (``prometheus-client``), and their exposition.

What is measured, and where:

- requests and their latency by method, route *template* and status (the
  access logger: never a path, so never an id or a token);
- decisions by log action and outcome, counted when their log entries are
  durable (the store's commit hook);
- the log's size, the entries not yet in a signed checkpoint and the
  checkpoint's age (read from the database at each scrape), checkpoints this
  process signed;
- seconds since each background job last finished a round (job lag);
- storage errors by class (blob store and database), as the app met them.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (no global
state). With ``serve --workers N`` the processes share one listening socket,
so a scrape reaches any one of them: the supervisor then gives every worker
the same ``PROMETHEUS_MULTIPROC_DIR`` and a scrape answers the sum over all
workers (prometheus-client's multiprocess mode); the gauges read from the
database are the same in every process (``mostrecent``).
"""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Small downloads take about a millisecond; a 2 GiB upload minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The gateway's metrics, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("carebridge_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("carebridge_http_request_duration_seconds", "Time to answer a request",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.decisions = Counter("carebridge_decisions", "Decisions logged (durable), by action and outcome",
                                 ["action", "outcome"], registry=r)
        self.storage_errors = Counter("carebridge_storage_errors", "Storage errors met while answering",
                                      ["kind"], registry=r)
        self.checkpoints_signed = Counter("carebridge_checkpoints_signed", "Checkpoints this process signed",
                                          registry=r)
        self.log_entries = Gauge("carebridge_log_entries", "Entries in the access log", registry=r,
                                 multiprocess_mode="mostrecent")
        self.unsigned_entries = Gauge("carebridge_log_unsigned_entries",
                                      "Log entries not yet covered by a signed checkpoint", registry=r,
                                      multiprocess_mode="mostrecent")
        self.checkpoint_age = Gauge("carebridge_checkpoint_age_seconds", "Age of the latest signed checkpoint",
                                    registry=r, multiprocess_mode="mostrecent")
        self.job_lag = Gauge("carebridge_job_lag_seconds", "Seconds since a background job last finished a round",
                             ["job"], registry=r, multiprocess_mode="min")
        self._job_done: dict[str, float] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def committed(self, entries: Iterable[tuple[str, str]]) -> None:
        """Count the (action, outcome) of log entries just committed (the store's writer thread)."""
        for (action, outcome), n in Tally(entries).items():
            self.decisions.labels(action, outcome).inc(n)

    def job_done(self, job: str) -> None:
        self._job_done[job] = time.monotonic()

    def refresh(self, *, size: int, signed_size: int, checkpoint_age: float | None) -> None:
        """Set what a scrape reads from the database and the jobs."""
        self.log_entries.set(size)
        self.unsigned_entries.set(size - signed_size)
        if checkpoint_age is not None:
            self.checkpoint_age.set(checkpoint_age)
        now = time.monotonic()
        for job, at in self._job_done.items():
            self.job_lag.labels(job).set(now - at)

    def exposition(self) -> bytes:
        """The text format; the sum over every worker in multiprocess mode."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
