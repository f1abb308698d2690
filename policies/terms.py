"""The vocabularies a policy is written in: purposes, link modes and link rules, networks.

Shared by the policy (:mod:`.policy`), its parser and the access context, so
that each name has one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network

from carebridge.policies._fields import check, is_int
from carebridge.policies.limits import MAX_LIFETIME_CEILING, MAX_LINK_USES_LIMIT

__all__ = ["LinkMode", "LinkRules", "Network", "Purpose"]

Network = IPv4Network | IPv6Network


class Purpose(StrEnum):
    """Why a recipient downloads a document (a closed vocabulary).

    Each maps to an HL7 v3 PurposeOfUse code (terminology.hl7.org, v3-ActReason),
    named in the comment after it, for exchange with systems that speak HL7.
    """

    treatment = "treatment"  # TREAT: treatment
    care_coordination = "care_coordination"  # COC: coordination of care
    patient_request = "patient_request"  # PATRQT: patient requested


class LinkMode(StrEnum):
    """Who may use a document's links: the signed-in recipient, or whoever holds one."""

    sign_in = "sign_in"
    bearer = "bearer"


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkRules:
    """A policy's rules for expiring links; raises PolicyValidationError naming the field."""

    mode: LinkMode
    lifetime: timedelta
    uses: int

    def __post_init__(self) -> None:
        check(isinstance(self.mode, LinkMode), "links.mode", "must be a LinkMode")
        ok = isinstance(self.lifetime, timedelta) and not self.lifetime.microseconds
        ok = ok and timedelta(seconds=1) <= self.lifetime <= MAX_LIFETIME_CEILING
        check(ok, "links.lifetime", "must be whole seconds from 1 second to the lifetime ceiling")
        check(is_int(self.uses, 1, MAX_LINK_USES_LIMIT), "links.uses", f"must be 1 to {MAX_LINK_USES_LIMIT}")


