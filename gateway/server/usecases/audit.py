"""The access log's gate: who may read entries, sign checkpoints on demand, and read proofs."""

from __future__ import annotations

from carebridge.policies import Role
from carebridge.storage.db.store import Tx

from ..vocabulary import LogAction, Why
from .caller import Caller, Principal, authenticate
from .documents import log_allowed
from .refusal import Refusal, acting
from .services import Services


async def require_auditor(svc: Services, caller: Caller, action: LogAction) -> Principal:
    """Authenticate; allow auditors only. The allow entry is appended before any byte is sent."""
    def unit(tx: Tx) -> Principal:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=action):
            if principal.user.role != Role.auditor.value:
                raise Refusal(Why.role_forbidden, f"only auditors may {action.verb}")
            log_allowed(tx, caller, action, principal, None)
        return principal

    return await svc.store.write(unit)
