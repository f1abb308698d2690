"""The server's ceilings on document policies, and the hard caps behind them.

:class:`PolicyLimits` is what an operator configures (through the gateway's
settings); the ``*_LIMIT`` and ``*_CEILING`` constants bound the
configuration itself, so that no setting can make counters overflow or
datetime arithmetic leave its range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from carebridge.policies._fields import check, describe, is_int

__all__ = [
    "MAX_DOWNLOADS_LIMIT", "MAX_LIFETIME_CEILING", "MAX_LINK_USES_LIMIT", "MAX_NETWORKS", "MAX_RECIPIENTS",
    "MAX_RETENTION_CEILING", "MAX_TOTAL_DOWNLOADS_LIMIT", "PolicyLimits",
]  # fmt: skip

# The manifest lists at most 64 age recipients, and the sender's own is one of them.
MAX_RECIPIENTS: Final = 63
# A treatment summary is fetched a handful of times; the cap keeps counters small.
MAX_DOWNLOADS_LIMIT: Final = 100
# Every recipient at the per-recipient cap, with room to spare; fits any INTEGER column.
MAX_TOTAL_DOWNLOADS_LIMIT: Final = 10_000
# A drop box, not an archive: bounds configuration (and datetime arithmetic).
MAX_LIFETIME_CEILING: Final = timedelta(days=365)
# Ciphertext kept after the end of access: ten years covers record-keeping rules.
MAX_RETENTION_CEILING: Final = timedelta(days=3650)
# A link is a convenience for a few clicks, not a standing credential.
MAX_LINK_USES_LIMIT: Final = 100
# Allowed networks per policy: a clinic names a few offices, not a routing table.
MAX_NETWORKS: Final = 16

_SECOND: Final = timedelta(seconds=1)


def _span_ok(span: object, low: timedelta, high: timedelta) -> bool:
    return isinstance(span, timedelta) and not span.microseconds and low <= span <= high


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyLimits:
    """The server's bounds on what a sender's policy may ask for.

    - ``default_lifetime`` (7 days): expiry when the sender names none.
    - ``max_lifetime`` (30 days): the latest expiry, counted from the send time
      (also for a later extension); at most :data:`MAX_LIFETIME_CEILING`.
    - ``max_recipients`` (:data:`MAX_RECIPIENTS`): recipients per document.
    - ``max_downloads`` (:data:`MAX_DOWNLOADS_LIMIT`): the highest
      ``max_downloads`` (per recipient) a policy may set.
    - ``max_total_downloads`` (1000): the highest ``max_total_downloads``.
    - ``default_retention`` (1 day) and ``max_retention`` (90 days): how long
      the ciphertext stays after the end of access when the policy names no
      ``retention``, and the most it may name. Zero is allowed.
    - ``link_max_lifetime`` (7 days), ``link_max_uses`` (10): the most a
      policy's ``links`` may ask for; ``allow_bearer_links`` (True): whether
      a policy may ask for bearer links at all.

    Spans are whole seconds. Raises PolicyValidationError naming the field.
    """

    default_lifetime: timedelta = timedelta(days=7)
    max_lifetime: timedelta = timedelta(days=30)
    max_recipients: int = MAX_RECIPIENTS
    max_downloads: int = MAX_DOWNLOADS_LIMIT
    max_total_downloads: int = 1000
    default_retention: timedelta = timedelta(days=1)
    max_retention: timedelta = timedelta(days=90)
    link_max_lifetime: timedelta = timedelta(days=7)
    link_max_uses: int = 10
    allow_bearer_links: bool = True

    def __post_init__(self) -> None:
        spans = (
            ("max_lifetime", _SECOND, MAX_LIFETIME_CEILING),
            ("default_lifetime", _SECOND, self.max_lifetime),
            ("max_retention", timedelta(0), MAX_RETENTION_CEILING),
            ("default_retention", timedelta(0), self.max_retention),
            ("link_max_lifetime", _SECOND, MAX_LIFETIME_CEILING),
        )
        for name, low, high in spans:
            ok = isinstance(high, timedelta) and _span_ok(getattr(self, name), low, high)
            shown = describe(high) if isinstance(high, timedelta) else "the maximum"
            check(ok, name, f"must be whole seconds from {describe(low)} to {shown}")
        counts = (
            ("max_recipients", MAX_RECIPIENTS),
            ("max_downloads", MAX_DOWNLOADS_LIMIT),
            ("max_total_downloads", MAX_TOTAL_DOWNLOADS_LIMIT),
            ("link_max_uses", MAX_LINK_USES_LIMIT),
        )
        for name, cap in counts:
            check(is_int(getattr(self, name), 1, cap), name, f"must be 1 to {cap}")
        check(type(self.allow_bearer_links) is bool, "allow_bearer_links", "must be a bool")
