"""The words of the access log and of refusals, each defined once.

:class:`LogAction` names what a log entry records; :class:`Why` names why a
request was refused (or ``ok``). Each ``Why`` maps to exactly one answer: an
HTTP status and a stable problem ``type`` (``urn:carebridge:problem:<slug>``),
with a title for people. Log entries carry the ``Why`` value as their
``reason``; problem responses carry its slug as their type. Never rename a
member: add new ones (exported logs and clients depend on them).

``docs/vocabulary.md`` is generated from this module
(``python -m carebridge.gateway.server.vocabulary > docs/vocabulary.md``) and
a test keeps it in step.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Self

from carebridge.policies import Reason
from carebridge.policies.links import LinkRefusal

PROBLEM_TYPE_PREFIX = "urn:carebridge:problem:"


class LogAction(StrEnum):
    """What a log entry records. ``verb`` is the action in words, for messages."""

    verb: str

    def __new__(cls, code: str, verb: str) -> Self:
        member = str.__new__(cls, code)
        member._value_ = code
        member.verb = verb
        return member

    auth = "auth", "authenticate"
    auth_lockout = "auth.lockout", "lock out repeated failures"
    document_upload = "document.upload", "send a document"
    document_read = "document.read", "read this document"
    document_download = "document.download", "download this document"
    document_revoke = "document.revoke", "revoke this document"
    document_amend = "document.amend", "change this document's policy"
    amend_revoke = "document.amend.revoke", "revoke this document"
    amend_revoke_recipient = "document.amend.revoke_recipient", "revoke a recipient of this document"
    amend_expiry = "document.amend.expiry", "change this document's expiry"
    amend_legal_hold = "document.amend.legal_hold", "change this document's legal hold"
    document_purge = "document.purge", "purge this document"
    document_list = "document.list", "list documents"
    redaction_override = "redaction.override", "override a redaction finding"
    link_issue = "link.issue", "issue a link to this document"
    link_open = "link.open", "open this link"
    link_claim = "link.claim", "download through this link"
    link_revoke = "link.revoke", "revoke this link"
    keys_register = "keys.register", "register keys"
    keys_revoke = "keys.revoke", "revoke keys"
    keys_read = "keys.read", "read keys"
    directory_lookup = "directory.lookup", "look up users"
    audit_read = "audit.read", "read the access log's checkpoints and proofs"
    audit_sign = "audit.checkpoint", "sign a checkpoint now"
    audit_export = "audit.export", "export the access log"
    mail_failed = "mail.failed", "send a notification"
    # the operator's admin verbs (actor: operator-cli)
    org_create = "org.create", "create an organisation"
    org_totp_required = "org.recipient_totp.required", "require recipients' second factor"
    org_totp_optional = "org.recipient_totp.optional", "make recipients' second factor optional"
    user_create = "user.create", "create a user"
    token_create = "token.create", "issue an API token"
    token_revoke = "token.revoke", "revoke an API token"
    referral_add = "referral.add", "allow a clinic to send to a spa"
    link_key_rotate = "link_key.rotate", "rotate the link-signing key"
    admin = "admin", "administer the gateway"
    web_release = "web.release", "serve this web release"
    signin = "auth.signin", "sign in"
    signout = "auth.signout", "sign out"
    session_list = "auth.sessions", "list your sessions"
    session_revoke = "auth.session.revoke", "end one of your sessions"
    enroll_open = "auth.enroll.open", "open an enrollment link"
    enroll = "auth.enroll", "set a password and a second factor"
    enroll_issue = "auth.enroll.issue", "issue an enrollment link"
    redaction_profile_set = "redaction.profile.set", "set your clinic's redaction profile"
    redaction_profile_read = "redaction.profile.read", "read your clinic's redaction profile"
    redaction_profile = "redaction.profile", "send under a redaction profile"
    # referral cases and acknowledgements (issue #16)
    case_open = "case.open", "open a referral case"
    case_read = "case.read", "read this case"
    case_list = "case.list", "list cases"
    case_deliver = "case.deliver", "mark this case delivered"
    case_acknowledge = "case.acknowledge", "mark this case acknowledged"
    case_follow_up = "case.follow_up", "set this case's follow-up date"
    case_close = "case.close", "close this case"
    case_document = "case.document", "send a document under this case"  # reason: the document's id
    case_note = "case.note", "add a note to this case"
    case_notes_read = "case.notes", "read this case's notes"
    document_acknowledge = "document.acknowledge", "acknowledge this document"
    receipts_read = "document.receipts", "read this document's receipts"
    # a user's sealed key file, kept for the browser and the CLI (issue #13)
    key_file_store = "key.file.store", "store your key file"
    key_file_fetch = "key.file.fetch", "fetch your key file"


class Why(StrEnum):
    """Why a request was refused: the log's ``reason`` and the problem's type, one to one."""

    status: int
    slug: str
    title: str

    def __new__(cls, code: str, status: int, slug: str, title: str) -> Self:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status, member.slug, member.title = status, slug, title
        return member

    ok = "ok", 200, "ok", "Allowed"
    # -- authentication (logged as action ``auth``) ------------------------------------
    missing_token = "missing_token", 401, "unauthorized", "Authentication required"
    malformed_token = "malformed_token", 401, "unauthorized", "Authentication required"
    bad_token = "bad_token", 401, "unauthorized", "Authentication required"
    revoked_token = "revoked_token", 401, "unauthorized", "Authentication required"
    expired_token = "expired_token", 401, "unauthorized", "Authentication required"
    user_disabled = "user_disabled", 401, "unauthorized", "Authentication required"
    locked_out = "locked_out", 429, "rate-limited", "Too many failed attempts"
    too_many_failures = "too_many_failures", 429, "rate-limited", "This failure started a lockout"
    rate_limited = "rate_limited", 429, "rate-limited", "Too many requests"
    # -- who may see what ----------------------------------------------------------------
    not_found = "not_found", 404, "not-found", "Not found"
    not_recipient = "not_recipient", 404, "not-found", "Not found"
    role_forbidden = "role_forbidden", 403, "role-forbidden", "Your role may not do this"
    not_sender = "not_sender", 403, "not-sender", "Only the sender may do this"
    # -- a document's policy (carebridge.policies.Reason) ---------------------------------
    revoked = "revoked", 410, "document-revoked", "The document is revoked"
    expired = "expired", 410, "document-expired", "The document has expired"
    purged = "purged", 410, "document-purged", "The document is no longer stored"
    recipient_revoked = "recipient_revoked", 410, "document-recipient-revoked", "Your access was revoked"
    download_limit = "download_limit", 403, "download-limit", "No downloads left"
    total_download_limit = "total_download_limit", 403, "total-download-limit", "No downloads left"
    not_yet_valid = "not_yet_valid", 403, "not-yet-valid", "Not available yet"
    network_forbidden = "network_forbidden", 403, "network-forbidden", "Not from this network"
    purpose_required = "purpose_required", 403, "purpose-required", "A purpose of use is required"
    purpose_forbidden = "purpose_forbidden", 403, "purpose-forbidden", "Purpose of use not allowed"
    links_forbidden = "links_forbidden", 403, "links-forbidden", "Links are not allowed"
    bearer_forbidden = "bearer_forbidden", 403, "bearer-forbidden", "Only sign-in links are allowed"
    extend_beyond_ceiling = "extend_beyond_ceiling", 403, "extend-beyond-ceiling", "Later than the server allows"
    expiry_not_future = "expiry_not_future", 403, "expiry-not-future", "The new expiry is not in the future"
    legal_hold = "legal_hold", 403, "legal-hold", "The document is under legal hold"
    not_due = "not_due", 403, "not-due", "Not due yet"
    unknown_action = "unknown_action", 403, "unknown-action", "No rule allows this"
    invalid_context = "invalid_context", 403, "invalid-context", "No rule allows this"
    # -- a sender's changes and links name a recipient (amend, can_issue_link) -------------
    unknown_recipient = "unknown_recipient", 403, "recipient-unknown", "Not a recipient of this document"
    recipient_already_revoked = ("recipient_already_revoked", 403, "recipient-revoked",
                                 "That recipient's access is already revoked")
    # -- sending (can_send's reasons, in the words of sending) ---------------------------
    send_role_forbidden = "send_role_forbidden", 403, "send-role-forbidden", "Your role may not send"
    not_clinic = "not_clinic", 403, "send-not-clinic", "Only clinics send documents"
    no_recipients = "no_recipients", 403, "send-no-recipients", "No recipients"
    recipient_unknown = "recipient_unknown", 403, "send-recipient-unknown", "Unknown recipient"
    recipient_not_spa = "recipient_not_spa", 403, "send-recipient-not-spa", "Recipient not at a spa"
    recipient_role = "recipient_role", 403, "send-recipient-role", "Recipient may not receive"
    no_referral = "no_referral", 403, "send-no-referral", "No referral to that spa"
    recipient_outside_spa = ("recipient_outside_spa", 403, "send-recipient-outside-spa",
                                  "Recipient outside the policy's spa")
    # -- expiring links (carebridge.policies.links.LinkRefusal) -------------------------
    link_malformed = "link_malformed", 403, "link-malformed", "This link cannot be used"
    link_algorithm = "link_algorithm", 403, "link-algorithm", "This link cannot be used"
    link_unknown_key = "link_unknown_key", 403, "link-unknown-key", "This link cannot be used"
    link_signature = "link_signature", 403, "link-signature", "This link cannot be used"
    link_audience = "link_audience", 403, "link-audience", "This link cannot be used"
    link_issuer = "link_issuer", 403, "link-issuer", "This link cannot be used"
    link_claims = "link_claims", 403, "link-claims", "This link cannot be used"
    link_not_yet_valid = "link_not_yet_valid", 403, "link-not-yet-valid", "This link cannot be used yet"
    link_expired = "link_expired", 410, "link-expired", "This link has expired"
    link_unknown = "link_unknown", 403, "link-unknown", "This link cannot be used"
    link_revoked = "link_revoked", 410, "link-revoked", "This link was revoked"
    link_used_up = "link_used_up", 410, "link-used-up", "This link is used up"
    link_wrong_document = "link_wrong_document", 403, "link-wrong-document", "This link cannot be used"
    link_wrong_user = "link_wrong_user", 403, "link-wrong-user", "This link is for someone else"
    link_sign_in_required = "link_sign_in_required", 401, "link-sign-in-required", "Sign in to use this link"
    # -- the request itself ----------------------------------------------------------------
    invalid_request = "invalid_request", 422, "invalid-request", "The request is not valid"
    malformed_json = "malformed_json", 422, "malformed-json", "Malformed JSON"
    invalid_purpose = "invalid_purpose", 400, "invalid-purpose", "Invalid purpose of use"
    invalid_policy = "invalid_policy", 422, "invalid-policy", "Invalid policy"
    invalid_amendment = "invalid_amendment", 422, "invalid-amendment", "Invalid amendment"
    invalid_link_request = "invalid_link_request", 422, "invalid-link-request", "Invalid link request"
    payload_too_large = "payload_too_large", 413, "payload-too-large", "Payload too large"
    unsupported_media_type = ("unsupported_media_type", 415, "unsupported-media-type",
                              "Unsupported media type")
    request_timeout = "request_timeout", 408, "request-timeout", "Request timeout"
    # -- uploads: the manifest and ciphertexts -------------------------------------------
    no_keys = "no_keys", 422, "no-keys", "No registered keys"
    bad_signature = "bad_signature", 422, "bad-signature", "Signature invalid"
    policy_digest_mismatch = "policy_digest_mismatch", 422, "policy-digest-mismatch", "Policy digest mismatch"
    wrong_sender = "wrong_sender", 422, "wrong-sender", "Wrong sender"
    invalid_document_id = "invalid_document_id", 422, "invalid-document-id", "Invalid document id"
    clock_skew = "clock_skew", 422, "clock-skew", "Clock skew"
    recipient_mismatch = "recipient_mismatch", 422, "recipient-mismatch", "Recipient mismatch"
    recipient_key_mismatch = "recipient_key_mismatch", 422, "recipient-key-mismatch", "Recipient key mismatch"
    digest_mismatch = "digest_mismatch", 422, "digest-mismatch", "Ciphertext does not match the manifest"
    recipient_count_mismatch = ("recipient_count_mismatch", 422, "recipient-count-mismatch",
                                "Recipient count mismatch")
    bad_age_header = "bad_age_header", 422, "bad-age-header", "Not an age file"
    document_exists = "document_exists", 409, "conflict", "Conflict"
    # -- keys ---------------------------------------------------------------------------------
    foreign_registration = "foreign_registration", 403, "forbidden", "The registration names another user"
    stale_registration = "stale_registration", 422, "stale-registration", "Stale registration"
    no_active_keys = "no_active_keys", 404, "not-found", "No active keys"
    # -- the access log -----------------------------------------------------------------------
    no_checkpoint = "no_checkpoint", 404, "not-found", "No such checkpoint"
    # -- jobs (never an HTTP answer; logged by the job) --------------------------------------
    smtp_error = "smtp_error", 503, "unavailable", "The mail server refused or failed"
    # -- sessions (logged as action ``auth``): a cookie that does not work ------------------
    bad_session = "bad_session", 401, "unauthorized", "Authentication required"
    session_ended = "session_ended", 401, "unauthorized", "Authentication required"
    session_idle = "session_idle", 401, "unauthorized", "Authentication required"
    session_expired = "session_expired", 401, "unauthorized", "Authentication required"
    # -- a cookie-authenticated request that may come from another site --------------------
    csrf_header = "csrf_header", 403, "csrf", "Cross-site request refused"
    csrf_origin = "csrf_origin", 403, "csrf", "Cross-site request refused"
    # -- sign-in (auth.signin): every failure answers the same; the log keeps which ----------
    unknown_account = "unknown_account", 401, "sign-in-failed", "Sign-in failed"
    wrong_password = "wrong_password", 401, "sign-in-failed", "Sign-in failed"
    wrong_totp = "wrong_totp", 401, "sign-in-failed", "Sign-in failed"
    totp_replayed = "totp_replayed", 401, "sign-in-failed", "Sign-in failed"
    not_enrolled = "not_enrolled", 401, "sign-in-failed", "Sign-in failed"
    account_disabled = "account_disabled", 401, "sign-in-failed", "Sign-in failed"
    no_session = "no_session", 409, "no-session", "Not signed in with a session"
    # -- enrollment links (auth.enroll…) ------------------------------------------------------
    enrollment_unknown = "enrollment_unknown", 401, "enrollment-invalid", "This enrollment link cannot be used"
    enrollment_expired = "enrollment_expired", 410, "enrollment-ended", "This enrollment link has ended"
    enrollment_used = "enrollment_used", 410, "enrollment-ended", "This enrollment link has ended"
    weak_password = "weak_password", 422, "weak-password", "Choose another password"
    totp_required = "totp_required", 422, "totp-required", "A second factor is required"
    totp_mismatch = "totp_mismatch", 422, "totp-mismatch", "The code does not match"
    # -- a clinic's redaction profile (redaction.profile…) --------------------------------------
    invalid_redaction_profile = ("invalid_redaction_profile", 422, "invalid-redaction-profile",
                                 "Invalid redaction profile")
    foreign_redaction_profile = ("foreign_redaction_profile", 403, "redaction-profile-foreign",
                                 "The profile is not signed for your clinic by one of its senders")
    redaction_profile_not_newer = ("redaction_profile_not_newer", 409, "redaction-profile-not-newer",
                                   "Not newer than the current redaction profile")
    stale_redaction_profile = ("stale_redaction_profile", 409, "stale-redaction-profile",
                               "Not the clinic's current redaction profile")

    # -- referral cases and receipts (case.…, document.acknowledge) -----------------------------
    invalid_case = "invalid_case", 422, "invalid-case", "The case statement is not valid"
    case_exists = "case_exists", 409, "case-exists", "A case with this id exists"
    not_case_party = "not_case_party", 403, "not-case-party", "You are not one of this case's people"
    case_wrong_side = "case_wrong_side", 403, "case-wrong-side", "The other side of the case does this"
    case_closed = "case_closed", 409, "case-closed", "The case is closed"
    case_state = "case_state", 409, "case-state", "The case is not in a state that allows this"
    case_recipient_outside = ("case_recipient_outside", 403, "case-recipient-outside",
                              "A recipient is not one of the case's people on the spa's side")
    invalid_note = "invalid_note", 422, "invalid-note", "The note is not valid"
    invalid_receipt = "invalid_receipt", 422, "invalid-receipt", "The receipt is not valid"
    receipt_for_other = "receipt_for_other", 422, "receipt-mismatch", "The receipt is not for this document"
    not_downloaded = "not_downloaded", 409, "not-downloaded", "Download the document before acknowledging it"
    already_acknowledged = "already_acknowledged", 409, "already-acknowledged", "Already acknowledged"
    # -- a user's sealed key file (key.file.…) ---------------------------------------------------
    no_key_file = "no_key_file", 404, "no-key-file", "No key file stored"
    invalid_key_file = "invalid_key_file", 422, "invalid-key-file", "Not a key file sealed by a passphrase"
    key_file_changed = ("key_file_changed", 412, "key-file-changed",
                        "The stored key file is not the one the request names")

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug


def for_policy(reason: Reason) -> Why:
    """The refusal for a policy decision's reason (documents, links, amendments)."""
    return Why(reason.value)


def for_change(reason: Reason) -> Why:
    """The refusal for a sender's change or link naming a recipient (amend, can_issue_link)."""
    named = {Reason.recipient_unknown: Why.unknown_recipient, Reason.recipient_revoked: Why.recipient_already_revoked}
    return named.get(reason) or for_policy(reason)


def for_send(reason: Reason) -> Why:
    """The refusal for :func:`carebridge.policies.can_send`'s reason, in the words of sending."""
    return Why.send_role_forbidden if reason is Reason.role_forbidden else Why(reason.value)


def for_link(refusal: LinkRefusal) -> Why:
    return Why(refusal.value)


def markdown() -> str:
    """The table of ``docs/vocabulary.md``."""
    lines = ["# Log actions and refusal reasons", "",
             "Generated from `gateway/server/vocabulary.py` "
             "(`python -m carebridge.gateway.server.vocabulary > docs/vocabulary.md`); a test keeps it in step.",
             "", "## Log actions", "", "| action | records an attempt to |", "|---|---|"]
    lines += [f"| `{a.value}` | {a.verb} |" for a in LogAction]
    lines += ["", "## Refusal reasons", "",
              "Each reason is the `reason` of a `deny` log entry and maps to one HTTP status and "
              "problem type (`urn:carebridge:problem:<type>`). A refusal for someone who may not know "
              "that an object exists is answered as `not-found` (404); the log keeps the true reason.",
              "", "| reason | status | problem type | title |", "|---|---|---|---|"]
    lines += [f"| `{w.value}` | {w.status} | `{w.slug}` | {w.title} |" for w in Why if w is not Why.ok]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
