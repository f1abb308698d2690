"""Admitting an upload: everything decided before and after the ciphertext streams in.

:func:`admit` decides before a byte of ciphertext is accepted (policy,
manifest signature, sender, recipients and their published keys, referral);
:func:`check_ciphertexts` compares what streamed in with the manifest;
:func:`record` writes the document row, its log entries and its mail in one
unit. Until that commit nothing is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carebridge.crypto import age
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.errors import CryptoError
from carebridge.crypto.manifest import PASSPHRASE_RECIPIENT, Manifest, policy_digest, verify_manifest
from carebridge.crypto.signing import VerifyKey
from carebridge.policies import (
    DocumentPolicy,
    DocumentState,
    Membership,
    OrgKind,
    PolicyValidationError,
    Role,
    can_send,
)
from carebridge.storage.db.documents import NewDocument
from carebridge.storage.db.keys import KeyRecord
from carebridge.storage.db.profiles import ProfileRecord
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from .. import notify
from ..lifecycle import purge_time
from ..vocabulary import LogAction, Why, for_send
from .caller import Caller, Principal
from .cases import check_sendable, is_report
from .documents import DOCUMENT_ID, log_allowed
from .profiles import check_named
from .refusal import Refusal, acting
from .services import Services

CLOCK_SKEW = 600  # seconds a manifest's created_at may differ from the server's clock
RECIPIENT_STANZAS = ("X25519", "mlkem768x25519")
SCRYPT_STANZA = "scrypt"


@dataclass(frozen=True, slots=True)
class Admitted:
    principal: Principal
    manifest: Manifest
    manifest_bytes: bytes
    policy: DocumentPolicy
    policy_json: str


@dataclass(frozen=True, slots=True)
class Streamed:
    """One ciphertext part as it arrived: size, SHA-256 and parsed age header."""

    size: int
    sha256: str
    header: age.Header


@dataclass(frozen=True, slots=True)
class _Parties:
    members: dict[str, Membership | None]
    referrals: set[tuple[str, str]]
    keys: dict[str, KeyRecord]
    profile: ProfileRecord | None  # the sender's clinic's current redaction profile


async def admit(svc: Services, principal: Principal, manifest_bytes: bytes, policy_obj: object) -> Admitted:
    """Decide an upload before its ciphertext arrives; raises a Refusal (logged as ``document.upload``)."""
    with acting(principal.user, action=LogAction.document_upload):
        now = svc.store.clock()
        try:
            policy = DocumentPolicy.from_json(policy_obj, now=now, limits=svc.settings.policy_limits)
        except PolicyValidationError as exc:
            raise Refusal(Why.invalid_policy, f"policy.{exc}") from None
        ids = sorted(policy.recipients)
        parties = await svc.store.query(lambda db: _load_parties(db, principal, ids))
        sender_key = parties.keys.get(principal.user.id)
        if sender_key is None:
            raise Refusal(Why.no_keys, "register your keys before sending")
        try:
            manifest = verify_manifest(manifest_bytes, VerifyKey.parse(sender_key.verify_key))
        except CryptoError as exc:
            raise Refusal(Why.bad_signature, str(exc)) from None
        with acting(None, object=manifest.document_id if DOCUMENT_ID.fullmatch(manifest.document_id) else None):
            _check_manifest_fields(manifest, principal, now)
            if manifest.policy_digest != policy_digest(policy_obj):
                raise Refusal(Why.policy_digest_mismatch, "the manifest's policy_digest does not match the policy")
            report = await svc.store.query(lambda db: is_report(db, principal.user, manifest))
            if report:  # back from the spa under its case: check_sendable below decides who may get it
                if policy.spa is not None:
                    raise Refusal(Why.invalid_policy, "policy.spa: a follow-up report goes to a clinic")
            else:
                decision = can_send(principal.actor, OrgKind(principal.user.org_kind), parties.members,
                                    parties.referrals, policy.spa)
                if not decision.allowed:
                    raise Refusal(for_send(decision.reason), decision.reason.description)
            _check_recipient_keys(principal, manifest, policy, parties.keys)
            check_named(parties.profile, _profile_named(manifest))
            await svc.store.query(lambda db: check_sendable(db, principal.user, manifest))
            if await svc.store.query(lambda db: db.documents.exists(manifest.document_id)):
                raise Refusal(Why.document_exists, "a document with this id exists")
    return Admitted(principal, manifest, manifest_bytes, policy, canonical_json(policy.to_json()).decode())


def _load_parties(db: Reader, principal: Principal, ids: list[str]) -> _Parties:
    users = db.identity.find_users(ids)
    members = {uid: (Membership(u.org_id, OrgKind(u.org_kind), Role(u.role)) if (u := users.get(uid)) else None)
               for uid in ids}
    spas = db.identity.referred_spas(principal.user.org_id)
    return _Parties(members, {(principal.user.org_id, s) for s in spas},
                    db.keys.active(ids + [principal.user.id]), db.profiles.current(principal.user.org_id))


def _profile_named(manifest: Manifest) -> tuple[str, int] | None:
    named = manifest.redaction_profile
    return None if named is None else (named.id, named.version)


def _check_manifest_fields(manifest: Manifest, principal: Principal, now: datetime) -> None:
    if manifest.sender.user_id != principal.user.id:
        raise Refusal(Why.wrong_sender, "the manifest's sender is not you")
    if not DOCUMENT_ID.fullmatch(manifest.document_id):
        raise Refusal(Why.invalid_document_id, "document_id must be doc_ followed by >= 22 random base64url characters")
    if abs((manifest.created_at - now).total_seconds()) > CLOCK_SKEW:
        raise Refusal(Why.clock_skew, f"the manifest's created_at is more than {CLOCK_SKEW // 60} minutes off "
                      f"the server's clock ({now.isoformat(timespec='seconds')})")


def _check_recipient_keys(principal: Principal, manifest: Manifest, policy: DocumentPolicy,
                          active: dict[str, KeyRecord]) -> None:
    named = {r.user_id: r.age_recipient for r in manifest.recipients}
    if is_passphrase(manifest):
        # Passphrase mode: age's scrypt stanza is alone in its file, so the sender is
        # not a recipient, and only a link can bring a recipient to the document.
        if set(named) != set(policy.recipients) or policy.links is None:
            raise Refusal(Why.recipient_mismatch,
                          "a passphrase document names exactly the policy's recipients and needs links")
        return
    if set(named) != set(policy.recipients) | {principal.user.id}:
        raise Refusal(Why.recipient_mismatch, "the manifest's recipients must be the policy's recipients and you")
    for user_id, recipient in named.items():
        key = active.get(user_id)
        # Link-key mode: a recipient's one-time key, whose secret travels in a link's
        # fragment, is not in the directory; only a policy with links can reach them.
        one_time = user_id != principal.user.id and policy.links is not None
        if not one_time and (key is None or key.age_recipient != recipient):
            raise Refusal(Why.recipient_key_mismatch,
                          "a recipient's age key is not their registered key (fetch the directory again)")


def check_ciphertexts(admitted: Admitted, meta: Streamed, content: Streamed) -> None:
    """What streamed in is what the manifest signed; raises a Refusal otherwise."""
    manifest = admitted.manifest
    with acting(admitted.principal.user, action=LogAction.document_upload, object=manifest.document_id):
        for name, got, want in (("meta", meta, manifest.meta), ("content", content, manifest.content)):
            if got.size != want.size or got.sha256 != want.sha256:
                raise Refusal(Why.digest_mismatch,
                              f"the {name} ciphertext does not match the manifest's SHA-256 and size")
            types = [stanza.type for stanza in got.header.stanzas]
            if is_passphrase(manifest):
                if types.count(SCRYPT_STANZA) != 1 or any(t in RECIPIENT_STANZAS for t in types):
                    raise Refusal(Why.recipient_count_mismatch,
                                  f"the {name} age header must hold one scrypt stanza and no other recipient")
                continue
            stanzas = sum(t in RECIPIENT_STANZAS for t in types)
            if stanzas != len(manifest.recipients) or SCRYPT_STANZA in types:
                raise Refusal(Why.recipient_count_mismatch,
                              f"the {name} age header has {stanzas} recipient stanzas for "
                              f"{len(manifest.recipients)} recipients")


def is_passphrase(manifest: Manifest) -> bool:
    return manifest.recipients[0].age_recipient == PASSPHRASE_RECIPIENT  # all or none (Manifest checks)


async def record(svc: Services, caller: Caller, admitted: Admitted, prefix: str) -> None:
    """Write the document row, its log entries and its mail: the upload becomes visible at this commit."""
    manifest, policy, principal = admitted.manifest, admitted.policy, admitted.principal
    settings, kid = svc.settings, svc.keyring.get().current.kid
    user = principal.user

    def unit(tx: Tx) -> None:
        fresh = DocumentState(document_id=manifest.document_id, sender_id=user.id, sender_org_id=user.org_id,
                              policy=policy, created_at=tx.now)
        tx.documents.insert_document(NewDocument(
            id=manifest.document_id, sender_id=user.id, sender_org_id=user.org_id,
            created_at=tx.now, expires_at=policy.expires_at,
            max_downloads=policy.max_downloads, not_before=policy.not_before,
            max_total_downloads=policy.max_total_downloads, legal_hold=policy.legal_hold,
            purge_after=purge_time(fresh, settings.default_retention),
            content_key=f"{prefix}/content", content_size=manifest.content.size,
            content_sha256=manifest.content.sha256, meta_key=f"{prefix}/meta",
            meta_size=manifest.meta.size, meta_sha256=manifest.meta.sha256, manifest=admitted.manifest_bytes,
            policy=admitted.policy_json,
            recipients=tuple((r.user_id, r.age_recipient) for r in manifest.recipients),
            case_id=manifest.case_id))
        log_allowed(tx, caller, LogAction.document_upload, principal, manifest.document_id)
        # One entry per redaction rule the sender overrode: the rule id, never the text it
        # matched. The reason itself stays in the signed manifest, which auditors can fetch.
        for override in manifest.overrides:
            log_allowed(tx, caller, LogAction.redaction_override, principal, manifest.document_id,
                        reason=override.rule_id)
        named = _profile_named(manifest)
        with acting(user, action=LogAction.document_upload, object=manifest.document_id):
            # again in this unit: the clinic may have set a newer profile while the ciphertext streamed
            check_named(tx.profiles.current(user.org_id), named)
            case = check_sendable(tx, user, manifest)  # and the case may have closed meanwhile
        if case is not None:  # the case's own trail names its documents: disclosures per case (audit)
            log_allowed(tx, caller, LogAction.case_document, principal, case.id, reason=manifest.document_id)
        if named is not None:  # ids only: the profile's id@version
            log_allowed(tx, caller, LogAction.redaction_profile, principal, manifest.document_id,
                        reason="@".join(map(str, named)))
        notify.on_upload(tx, settings, sender=user, state=fresh, kid=kid)
        if case is not None and user.org_id == case.clinic_org_id:  # reports are not reminded of
            notify.on_case_document(tx, settings, case=case, document_id=manifest.document_id,
                                    recipients=sorted(policy.recipients))

    await svc.store.write(unit)
