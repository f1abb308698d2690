"""carebridge.policies: pure access decisions, with no I/O and no key material.

Everything here is a function of its arguments: who acts (:class:`Actor`),
on what (:class:`DocumentState`, which holds the sender's
:class:`DocumentPolicy`), how (:class:`Action`), and when (``now``, passed in
so tests and replays are deterministic). The answer is a :class:`Decision`:
allowed, or denied with a stable :class:`Reason` code for the access log and
the HTTP problem type. A denial is a value, never an exception.

What you want:

* :func:`decide` — may this actor read, download or revoke this document now?
* :func:`can_send` — may this uploader address a document to these users?
* :meth:`DocumentPolicy.from_json` — a sender's policy JSON to a typed policy,
  within the server's :class:`PolicyLimits`; :meth:`DocumentPolicy.to_json` —
  the dict whose canonical JSON is the manifest's ``policy_digest``.
* :mod:`.checks` — the composable checks the rules are built from
  (``AllOf``, ``AnyOf``, ``IsRecipient``, ...), for new rules.

Invalid input raises :class:`PolicyValidationError` (a :class:`PolicyError`)
whose message names the field: ``expires_at: must be after the send time``.
"""

from carebridge.policies.documents import RULES, Membership, can_send, decide
from carebridge.policies.errors import PolicyError, PolicyValidationError
from carebridge.policies.model import (
    MAX_DOWNLOADS_LIMIT,
    MAX_RECIPIENTS,
    POLICY_VERSION,
    Action,
    Actor,
    Decision,
    DocumentPolicy,
    DocumentState,
    OrgKind,
    PolicyLimits,
    Reason,
    Role,
)

__all__ = [
    "MAX_DOWNLOADS_LIMIT", "MAX_RECIPIENTS", "POLICY_VERSION", "RULES",
    "Action", "Actor", "Decision", "DocumentPolicy", "DocumentState", "Membership", "OrgKind",
    "PolicyError", "PolicyLimits", "PolicyValidationError", "Reason", "Role",
    "can_send", "decide",
]  # fmt: skip
