"""Key transparency: before encrypting to a key, check the log published it.

For every recipient key the directory returns, a sender checks, offline of
the gateway's word:

1. the signed registration statement verifies with the key it names, for
   that user and that age recipient (proof of possession);
2. the log entry that published it is a ``keys.register`` allow entry by
   that user whose object is the statement's digest
   (:func:`carebridge.crypto.registration.log_object`), at the stated seq;
3. that entry is included in a checkpoint signed by the log's key
   (a C2SP tlog-proof from the gateway, verified here).

A gateway that swapped a key would have to log the swap, where the key's
owner and every auditor can see it (``carebridge keys audit``,
:mod:`.keyaudit`). And a sender accepts only the latest registration of a
recipient (:func:`check_latest`): a key its owner rotated out — perhaps
because it leaked — is refused even though the log once published it.
"""

from __future__ import annotations

import base64
import json

from ...crypto import merkle, note, tlog_proof
from ...crypto.errors import CryptoError
from ...crypto.registration import log_object, verify_registration
from .api import ApiError, Client


class KeyNotLogged(Exception):
    """A recipient's key could not be shown to be in the log; do not encrypt to it."""


async def log_verifier(client: Client, pinned: str | None) -> tuple[note.Verifier, str]:
    """The log's verifier: the pinned key if given (it must match the gateway's), else the gateway's."""
    served = await client.audit_verifier()
    key = pinned or served["verifier_key"]
    if pinned and pinned != served["verifier_key"]:
        raise KeyNotLogged("the gateway's log key is not the one you pinned (CAREBRIDGE_LOG_VERIFIER)")
    try:
        verifier = note.Verifier.parse(key)
    except CryptoError:
        raise KeyNotLogged("the log's verifier key is malformed") from None
    return verifier, served["origin"]


async def check_published(client: Client, user: dict, verifier: note.Verifier, origin: str) -> int:
    """Check *user*'s active keys are in the log; returns the checkpoint size that proves it."""
    keys = user["keys"]
    who = user.get("email", user["id"])
    try:
        registration = base64.b64decode(keys["registration"])
        statement = verify_registration(registration)
        entry = base64.b64decode(keys["log_entry"] or "")
        fields = json.loads(entry)
    except (CryptoError, ValueError, TypeError, KeyError):
        raise KeyNotLogged(f"{who}: the key's registration or log entry is malformed") from None
    if (statement.user_id != user["id"] or statement.age_recipient != keys["age_recipient"]
            or statement.verify_key.encode() != keys["verify_key"]):
        raise KeyNotLogged(f"{who}: the registration does not match the key the directory gave")
    expected = {"action": "keys.register", "outcome": "allow", "actor": user["id"],
                "object": log_object(registration), "seq": keys["log_seq"]}
    if any(fields.get(k) != v for k, v in expected.items()):
        raise KeyNotLogged(f"{who}: the log entry does not publish this key")
    try:
        proof_text = await client.inclusion_proof(keys["log_seq"])
    except ApiError as exc:
        raise KeyNotLogged(f"{who}: the key is not proven to be in the log (no inclusion proof: {exc})") from None
    try:
        proof = tlog_proof.parse_tlog_proof(proof_text)
        if proof.index != keys["log_seq"]:
            raise KeyNotLogged(f"{who}: the inclusion proof is for another entry")
        checkpoint = tlog_proof.verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(entry),
                                                  verifier=verifier, origin=origin)
    except CryptoError as exc:
        raise KeyNotLogged(f"{who}: the key is not proven to be in the log ({exc})") from None
    return checkpoint.size


async def check_latest(client: Client, user: dict) -> None:
    """Refuse *user*'s offered key when the gateway lists a later registration of theirs.

    The offered key was proven logged (:func:`check_published`); a later
    ``keys.register`` of the same user means the owner rotated it out. (A
    gateway that also hides the later registration from this listing is
    caught by the owner's ``keys audit``, not here.)
    """
    who = user.get("email", user["id"])
    offered = user["keys"]["log_seq"]
    try:
        later = [k["log_seq"] for k in await client.key_history(user["id"])
                 if isinstance(k.get("log_seq"), int) and k["log_seq"] > offered]
    except ApiError as exc:
        raise KeyNotLogged(f"{who}: cannot read their key history to check the key is their latest ({exc})") from None
    if later:
        raise KeyNotLogged(f"{who}: the key offered (log seq {offered}) was rotated out by a later registration"
                           f" (log seq {max(later)}); the gateway is not serving their latest key")
