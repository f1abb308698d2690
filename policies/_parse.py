"""Policy JSON to the keyword arguments of DocumentPolicy (private; the schema is in :mod:`.policy`).

``now`` is the send time for a sender's policy, or ``None`` for a policy read
back from storage, which skips the checks that only hold at upload (expiry
after the send time, a default expiry). Every failure names the field.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from carebridge.policies._fields import ID_TEXT, check, describe, is_id, is_int, parse_time
from carebridge.policies.errors import PolicyValidationError
from carebridge.policies.limits import MAX_NETWORKS, PolicyLimits
from carebridge.policies.terms import LinkMode, LinkRules, Network, Purpose

__all__ = ["fields"]

_FIELD_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]{1,64}")
_V1_FIELDS: Final = frozenset({"version", "recipients", "expires_at", "max_downloads"})
_V2_FIELDS: Final = _V1_FIELDS | {"spa", "not_before", "max_total_downloads", "networks", "purposes", "links",
                                  "retention", "legal_hold"}  # fmt: skip
_LINK_FIELDS: Final = frozenset({"mode", "lifetime", "uses"})
# Long enough for any IPv6 CIDR; a longer string is not worth parsing.
_MAX_CIDR_LENGTH: Final = 64


def fields(obj: object, *, now: datetime | None, limits: PolicyLimits) -> dict[str, Any]:
    """The DocumentPolicy keyword arguments for the policy JSON *obj*; raises PolicyValidationError."""
    if not isinstance(obj, dict):
        raise PolicyValidationError("policy", "must be a JSON object")
    version = obj.get("version")
    # The version decides which keys exist, so it is read first.
    check("version" in obj, "version", "missing")
    check(is_int(version, 1, 2), "version", "must be 1 or 2")
    _known(obj, "policy", _V1_FIELDS if version == 1 else _V2_FIELDS, ("version", "recipients"))
    out: dict[str, Any] = {
        "version": version,
        "recipients": _recipients(obj["recipients"], limits.max_recipients),
        "expires_at": _expiry(obj, now, limits),
        "max_downloads": _count(obj.get("max_downloads"), "max_downloads", limits.max_downloads),
    }
    if version == 1:
        return out
    out["max_total_downloads"] = _count(obj.get("max_total_downloads"), "max_total_downloads",
                                        limits.max_total_downloads)  # fmt: skip
    if "spa" in obj:
        check(is_id(obj["spa"]), "spa", "must be an org id (same shape as a user id)")
        out["spa"] = obj["spa"]
    if "not_before" in obj:
        out["not_before"] = parse_time(obj["not_before"], "not_before")
        check(out["not_before"] < out["expires_at"], "not_before", "must be before expires_at")
    if "networks" in obj:
        out["networks"] = _networks(obj["networks"])
    if "purposes" in obj:
        out["purposes"] = _purposes(obj["purposes"])
    if "links" in obj:
        out["links"] = _links(obj["links"], limits)
    if "retention" in obj:
        out["retention"] = _span(obj["retention"], "retention", 0, limits.max_retention)
    if "legal_hold" in obj:
        check(type(obj["legal_hold"]) is bool, "legal_hold", "must be true or false")
        out["legal_hold"] = obj["legal_hold"]
    return out


def _known(obj: Mapping[str, Any], where: str, allowed: frozenset[str], required: tuple[str, ...]) -> None:
    for name in obj:
        if name not in allowed:
            # Name the key only when it is harmless to echo back.
            harmless = isinstance(name, str) and _FIELD_NAME_RE.fullmatch(name)
            shown = (name if where == "policy" else f"{where}.{name}") if harmless else where
            raise PolicyValidationError(shown, "unknown field")
    for name in required:
        check(name in obj, name if where == "policy" else f"{where}.{name}", "missing")


def _recipients(value: object, most: int) -> frozenset[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise PolicyValidationError("recipients", f"must be a JSON array of 1 to {most} user ids")
    seen: set[str] = set()
    for i, item in enumerate(value):
        check(is_id(item), f"recipients[{i}]", f"must be {ID_TEXT}")
        check(item not in seen, f"recipients[{i}]", "duplicates an earlier recipient")
        seen.add(item)
    return frozenset(seen)


def _expiry(obj: Mapping[str, Any], now: datetime | None, limits: PolicyLimits) -> datetime:
    if "expires_at" not in obj:
        if now is None:  # a stored policy always names its expiry
            raise PolicyValidationError("expires_at", "missing")
        # Lifetimes are whole seconds of at least one, so this lies after now.
        return now.astimezone(UTC).replace(microsecond=0) + limits.default_lifetime
    expires_at = parse_time(obj["expires_at"], "expires_at")
    if now is not None:
        check(expires_at > now, "expires_at", "must be after the send time")
        latest = describe(limits.max_lifetime)
        # A difference, not now + max_lifetime, which overflows near datetime.max.
        ok = expires_at - now <= limits.max_lifetime
        check(ok, "expires_at", f"must be at most {latest} after the send time")
    return expires_at


def _count(value: object, name: str, most: int) -> int | None:
    check(value is None or is_int(value, 1, most), name, f"must be null or an integer from 1 to {most}")
    return value  # type: ignore[return-value]


def _span(value: object, name: str, least: int, most: timedelta) -> timedelta:
    high = int(most.total_seconds())
    check(is_int(value, least, high), name, f"must be an integer of seconds from {least} to {high}")
    return timedelta(seconds=value)  # type: ignore[arg-type]


def _networks(value: object) -> frozenset[Network]:
    ok = isinstance(value, list) and 1 <= len(value) <= MAX_NETWORKS
    check(ok, "networks", f"must be a JSON array of 1 to {MAX_NETWORKS} networks")
    seen: set[Network] = set()
    for i, item in enumerate(value):  # type: ignore[arg-type]
        name = f"networks[{i}]"
        check(isinstance(item, str) and "/" in item and len(item) <= _MAX_CIDR_LENGTH, name,
              "must be an IPv4 or IPv6 network in CIDR notation, such as 10.1.0.0/16")  # fmt: skip
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            problem = "has host bits set" if "host bits" in str(exc) else "is not a valid CIDR network"
            raise PolicyValidationError(name, problem) from None
        # One spelling per network, so one digest: 10.1.0.0/16, 2001:db8::/32.
        check(str(network) == item, name, f"must be written in canonical form ({network})")
        check(network not in seen, name, "duplicates an earlier network")
        seen.add(network)
    return frozenset(seen)


def _purposes(value: object) -> frozenset[Purpose]:
    known = ", ".join(p.value for p in Purpose)
    ok = isinstance(value, list) and 1 <= len(value) <= len(Purpose)
    check(ok, "purposes", f"must be a JSON array of 1 to {len(Purpose)} purposes")
    seen: set[Purpose] = set()
    for i, item in enumerate(value):  # type: ignore[arg-type]
        check(isinstance(item, str) and item in Purpose.__members__, f"purposes[{i}]", f"must be one of {known}")
        check(Purpose(item) not in seen, f"purposes[{i}]", "duplicates an earlier purpose")
        seen.add(Purpose(item))
    return frozenset(seen)


def _links(value: object, limits: PolicyLimits) -> LinkRules:
    check(isinstance(value, dict), "links", "must be a JSON object with mode, lifetime and uses")
    _known(value, "links", _LINK_FIELDS, ("mode", "lifetime", "uses"))  # type: ignore[arg-type]
    mode = value["mode"]  # type: ignore[index]
    check(isinstance(mode, str) and mode in LinkMode.__members__, "links.mode", "must be sign_in or bearer")
    ok = mode != LinkMode.bearer or limits.allow_bearer_links
    check(ok, "links.mode", "bearer links are not allowed on this server")
    lifetime = _span(value["lifetime"], "links.lifetime", 1, limits.link_max_lifetime)  # type: ignore[index]
    uses = value["uses"]  # type: ignore[index]
    check(is_int(uses, 1, limits.link_max_uses), "links.uses", f"must be an integer from 1 to {limits.link_max_uses}")
    return LinkRules(mode=LinkMode(mode), lifetime=lifetime, uses=uses)
