"""The policy a sender sets on a document: its JSON schema and its typed form.

Policy JSON
===========

What a sender uploads, and what :meth:`DocumentPolicy.to_json` gives back.
The machine-readable form of this schema is ``policy.schema.json`` next to
this module (JSON Schema 2020-12); a test keeps the two in agreement.

Version 1::

    {"expires_at": TIME, "max_downloads": INT, "recipients": [ID, ...], "version": 1}

Version 2 adds optional keys (all of version 1 keeps its meaning)::

    {"version": 2, "recipients": [ID, ...], "spa": ID,
     "not_before": TIME, "expires_at": TIME,
     "max_downloads": INT, "max_total_downloads": INT,
     "networks": [CIDR, ...], "purposes": [PURPOSE, ...],
     "links": {"mode": "sign_in" | "bearer", "lifetime": SECONDS, "uses": INT},
     "retention": SECONDS, "legal_hold": BOOL}

- ``version``: required, 1 or 2. A version-1 policy may use only
  ``recipients``, ``expires_at`` and ``max_downloads``.
- ``recipients``: required, 1 to :attr:`PolicyLimits.max_recipients` distinct
  user ids (:data:`ID_PATTERN`); their order carries no meaning. The client
  expands ``org:NAME`` to that spa's recipient users at send time; the list
  is frozen then (a later member of the spa is not a recipient).
- ``spa``: optional org id the recipients were chosen from; the gateway then
  checks at upload that every recipient belongs to it.
- ``not_before``: optional TIME before which nobody may read or download.
  It must lie before ``expires_at``.
- ``expires_at``: optional TIME; absent means send time +
  :attr:`PolicyLimits.default_lifetime`. It must lie after the send time and
  at most :attr:`PolicyLimits.max_lifetime` after it.
- ``max_downloads``: optional, absent or ``null`` for no limit; downloads
  *per recipient*, 1 to :attr:`PolicyLimits.max_downloads`.
  ``max_total_downloads``: optional, downloads across all recipients, 1 to
  :attr:`PolicyLimits.max_total_downloads`. The sender's own downloads are
  never counted.
- ``networks``: optional, 1 to :data:`MAX_NETWORKS` distinct IPv4 or IPv6
  networks in canonical CIDR notation (``10.1.0.0/16``, ``2001:db8::/32``;
  host bits set, a bare address or another spelling is an error). Absent
  means any address; when present, a request from an unknown address is
  refused.
- ``purposes``: optional, 1 or more distinct :class:`Purpose` values; a
  download must then state one of them.
- ``links``: optional; absent means no links. ``mode`` ``sign_in`` (the
  recipient signs in) or ``bearer`` (whoever holds the link, only where
  :attr:`PolicyLimits.allow_bearer_links`; a bearer policy allows sign-in
  links too), ``lifetime`` 1 to :attr:`PolicyLimits.link_max_lifetime`
  seconds, ``uses`` 1 to :attr:`PolicyLimits.link_max_uses`.
- ``retention``: optional seconds, 0 to :attr:`PolicyLimits.max_retention`,
  that the ciphertext is kept after access ends (expiry or revocation)
  before it is purged; absent means the server's default.
- ``legal_hold``: optional bool, default false; while held, nothing is purged.
- TIME is UTC in whole seconds, ``YYYY-MM-DDTHH:MM:SSZ`` (upper-case ``T``
  and ``Z``). Any other key is an error; so is a ``true`` where an integer
  belongs.

:meth:`DocumentPolicy.to_json` sorts keys and lists and writes an optional
key only when it is set (``legal_hold`` only when true), so that client and
server hash the same canonical JSON (``policy_digest``) and every version-1
policy keeps its digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Final

from carebridge.policies import _parse
from carebridge.policies._fields import ID_TEXT, check, format_time, is_aware, is_id, is_int, is_utc
from carebridge.policies.terms import LinkMode, LinkRules, Network, Purpose
from carebridge.policies.limits import (
    MAX_DOWNLOADS_LIMIT,
    MAX_LIFETIME_CEILING,
    MAX_LINK_USES_LIMIT,
    MAX_NETWORKS,
    MAX_RECIPIENTS,
    MAX_RETENTION_CEILING,
    MAX_TOTAL_DOWNLOADS_LIMIT,
    PolicyLimits,
)

__all__ = ["POLICY_VERSION", "POLICY_VERSIONS", "DocumentPolicy", "LinkMode", "LinkRules", "Network", "Purpose"]

POLICY_VERSION: Final = 2  # the latest; what DocumentPolicy() builds unless told otherwise
POLICY_VERSIONS: Final = (1, 2)

# The hard caps, for a policy read back from storage (from_stored): what was
# accepted once stays readable when the operator lowers a limit later.
_STORED_LIMITS: Final = PolicyLimits(
    default_lifetime=MAX_LIFETIME_CEILING, max_lifetime=MAX_LIFETIME_CEILING, max_recipients=MAX_RECIPIENTS,
    max_downloads=MAX_DOWNLOADS_LIMIT, max_total_downloads=MAX_TOTAL_DOWNLOADS_LIMIT,
    default_retention=MAX_RETENTION_CEILING, max_retention=MAX_RETENTION_CEILING,
    link_max_lifetime=MAX_LIFETIME_CEILING, link_max_uses=MAX_LINK_USES_LIMIT, allow_bearer_links=True,
)  # fmt: skip


def _whole_utc(value: object) -> bool:
    return is_utc(value) and not value.microsecond  # type: ignore[union-attr]


@dataclass(frozen=True, kw_only=True, slots=True)
class DocumentPolicy:
    """A document's access policy, valid by construction.

    The constructor checks what holds forever (types, the hard caps, UTC
    whole seconds, ``not_before < expires_at``, version-1 policies without
    version-2 fields); :meth:`from_json` also checks what holds at upload
    (expiry after the send time, the server's :class:`PolicyLimits`). Both
    raise PolicyValidationError naming the field. ``None`` means "not set".
    """

    recipients: frozenset[str]
    expires_at: datetime
    max_downloads: int | None = None
    version: int = POLICY_VERSION
    spa: str | None = None
    not_before: datetime | None = None
    max_total_downloads: int | None = None
    networks: frozenset[Network] | None = None
    purposes: frozenset[Purpose] | None = None
    links: LinkRules | None = None
    retention: timedelta | None = None
    legal_hold: bool = False

    def __post_init__(self) -> None:
        ok = isinstance(self.recipients, frozenset) and 1 <= len(self.recipients) <= MAX_RECIPIENTS
        check(ok, "recipients", f"must be a frozenset of 1 to {MAX_RECIPIENTS} user ids")
        check(all(map(is_id, self.recipients)), "recipients", f"must hold only user ids: {ID_TEXT}")
        check(_whole_utc(self.expires_at), "expires_at", "must be an aware UTC datetime in whole seconds")
        ok = self.max_downloads is None or is_int(self.max_downloads, 1, MAX_DOWNLOADS_LIMIT)
        check(ok, "max_downloads", f"must be None or an integer from 1 to {MAX_DOWNLOADS_LIMIT}")
        check(self.version in POLICY_VERSIONS and type(self.version) is int, "version", "must be 1 or 2")
        self._check_v2()
        if self.version == 1:
            unset = all(getattr(self, name) == _V2_UNSET[name] for name in _V2_UNSET)
            check(unset, "version", "must be 2 for a policy with version-2 fields")

    def _check_v2(self) -> None:
        check(self.spa is None or is_id(self.spa), "spa", "must be None or an org id")
        if self.not_before is not None:
            check(_whole_utc(self.not_before), "not_before", "must be None or an aware UTC datetime in whole seconds")
            check(self.not_before < self.expires_at, "not_before", "must be before expires_at")
        ok = self.max_total_downloads is None or is_int(self.max_total_downloads, 1, MAX_TOTAL_DOWNLOADS_LIMIT)
        check(ok, "max_total_downloads", f"must be None or an integer from 1 to {MAX_TOTAL_DOWNLOADS_LIMIT}")
        nets = self.networks
        ok = nets is None or (isinstance(nets, frozenset) and 1 <= len(nets) <= MAX_NETWORKS
                              and all(isinstance(n, IPv4Network | IPv6Network) for n in nets))  # fmt: skip
        check(ok, "networks", f"must be None or a frozenset of 1 to {MAX_NETWORKS} networks")
        ok = self.purposes is None or (isinstance(self.purposes, frozenset) and len(self.purposes) >= 1
                                       and all(isinstance(p, Purpose) for p in self.purposes))  # fmt: skip
        check(ok, "purposes", "must be None or a non-empty frozenset of Purpose")
        check(self.links is None or isinstance(self.links, LinkRules), "links", "must be None or LinkRules")
        span = self.retention
        ok = span is None or (isinstance(span, timedelta) and not span.microseconds
                              and timedelta(0) <= span <= MAX_RETENTION_CEILING)  # fmt: skip
        check(ok, "retention", "must be None or whole seconds from 0 to the retention ceiling")
        check(type(self.legal_hold) is bool, "legal_hold", "must be a bool")

    @classmethod
    def from_json(cls, obj: object, *, now: datetime, limits: PolicyLimits) -> DocumentPolicy:
        """Parse a sender's policy JSON (already decoded) as sent at *now*, within *limits*.

        Raises PolicyValidationError naming the field, e.g.
        ``expires_at: must be after the send time`` or ``networks[1]: ...``.
        """
        check(is_aware(now), "now", "must be an aware datetime")
        return cls(**_parse.fields(obj, now=now, limits=limits))

    @classmethod
    def from_stored(cls, obj: object) -> DocumentPolicy:
        """Re-read the canonical JSON that :meth:`to_json` gave at upload.

        No send-time checks (the send time has passed, and the operator may
        have lowered a limit since): only the shape and the hard caps.
        ``expires_at`` is required. Raises PolicyValidationError.
        """
        return cls(**_parse.fields(obj, now=None, limits=_STORED_LIMITS))

    def to_json(self) -> dict[str, Any]:
        """The policy JSON, keys and lists sorted, ready for canonical encoding (``policy_digest``)."""
        obj: dict[str, Any] = {"expires_at": format_time(self.expires_at)}
        if self.legal_hold:
            obj["legal_hold"] = True
        if self.links is not None:
            obj["links"] = {"lifetime": int(self.links.lifetime.total_seconds()), "mode": self.links.mode.value,
                            "uses": self.links.uses}  # fmt: skip
        for name in ("max_downloads", "max_total_downloads"):
            if getattr(self, name) is not None:
                obj[name] = getattr(self, name)
        if self.networks is not None:
            obj["networks"] = [str(n) for n in sorted(self.networks, key=_network_order)]
        if self.not_before is not None:
            obj["not_before"] = format_time(self.not_before)
        if self.purposes is not None:
            obj["purposes"] = sorted(p.value for p in self.purposes)
        obj["recipients"] = sorted(self.recipients)
        if self.retention is not None:
            obj["retention"] = int(self.retention.total_seconds())
        if self.spa is not None:
            obj["spa"] = self.spa
        obj["version"] = self.version
        return obj

    def allows_address(self, address: object) -> bool:
        """Whether a request from *address* is inside ``networks`` (any address when unset).

        An unknown address (``None``) is inside no network: it fails closed.
        """
        if self.networks is None:
            return True
        return any(getattr(address, "version", None) == net.version and address in net for net in self.networks)


def _network_order(net: Network) -> tuple[int, int, int]:
    return net.version, int(net.network_address), net.prefixlen


# What a version-1 policy must leave at its default.
_V2_UNSET: Final = {"spa": None, "not_before": None, "max_total_downloads": None, "networks": None,
                    "purposes": None, "links": None, "retention": None, "legal_hold": False}  # fmt: skip
