"""carebridge.policies: pure access decisions, with no I/O and no key material.

Everything here is a function of its arguments: who acts (:class:`Actor`),
on what (:class:`DocumentState`, which holds the sender's
:class:`DocumentPolicy` and what happened since), how (:class:`Action`), and
in which circumstances (:class:`AccessContext`: the time, passed in so tests
and replays are deterministic, the client's address, the stated
:class:`Purpose`, the :class:`Channel`). The answer is a :class:`Decision`:
allowed, or denied with a stable :class:`Reason` code for the access log and
the HTTP problem type. A denial is a value, never an exception.

What you want:

* :func:`decide` — may this actor read, download, revoke, amend, issue a
  link for, or purge this document now? :func:`can_issue_link` adds the
  link's recipient.
* :func:`amend` — may the sender make this :data:`Change` (``RevokeAll``,
  ``RevokeRecipient``, ``SetExpiry``, ``SetLegalHold``); :func:`parse_change`
  reads one from JSON.
* :func:`purge_after` / :func:`purge_due` — when the purge job may delete
  the ciphertext.
* :func:`can_send` — may this uploader address a document to these users?
* :meth:`DocumentPolicy.from_json` — a sender's policy JSON (schema in
  :mod:`.policy` and ``policy.schema.json``) to a typed policy, within the
  server's :class:`PolicyLimits`; :meth:`DocumentPolicy.from_stored` — the
  same JSON read back from storage; :meth:`DocumentPolicy.to_json` — the dict
  whose canonical JSON is the manifest's ``policy_digest``.
* :mod:`.checks` — the composable checks the rules are built from
  (``AllOf``, ``AnyOf``, ``IsRecipient``, ``NotBefore``, ...), for new rules.

Invalid input raises :class:`PolicyValidationError` (a :class:`PolicyError`)
whose message names the field: ``networks[1]: has host bits set``.
"""

from carebridge.policies.amend import (
    Change,
    RevokeAll,
    RevokeRecipient,
    SetExpiry,
    SetLegalHold,
    amend,
    parse_change,
    purge_after,
    purge_due,
)
from carebridge.policies.documents import RULES, Membership, can_issue_link, can_send, decide, may_touch_documents
from carebridge.policies.errors import PolicyError, PolicyValidationError
from carebridge.policies.model import (
    MAX_DOWNLOADS_LIMIT,
    MAX_NETWORKS,
    MAX_RECIPIENTS,
    MAX_TOTAL_DOWNLOADS_LIMIT,
    POLICY_VERSION,
    AccessContext,
    Action,
    Actor,
    Channel,
    Decision,
    DocumentPolicy,
    DocumentState,
    LinkMode,
    LinkRules,
    OrgKind,
    PolicyLimits,
    Purpose,
    Reason,
    Role,
)

__all__ = [
    "MAX_DOWNLOADS_LIMIT", "MAX_NETWORKS", "MAX_RECIPIENTS", "MAX_TOTAL_DOWNLOADS_LIMIT", "POLICY_VERSION",
    "RULES", "AccessContext", "Action", "Actor", "Change", "Channel", "Decision", "DocumentPolicy",
    "DocumentState", "LinkMode", "LinkRules", "Membership", "OrgKind", "PolicyError", "PolicyLimits",
    "PolicyValidationError", "Purpose", "Reason", "RevokeAll", "RevokeRecipient", "Role", "SetExpiry",
    "SetLegalHold", "amend", "can_issue_link", "can_send", "decide", "may_touch_documents", "parse_change", "purge_after", "purge_due",
]  # fmt: skip
