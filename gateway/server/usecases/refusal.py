"""The one refusal every use case raises, and how it is answered.

A :class:`Refusal` names a :class:`~..vocabulary.Why` and, when it knows them,
the log entry's action, object and actor. The gateway's refusal middleware
(:mod:`..refusals`) is the one place that appends it to the access log and
answers it as problem+json; nothing else logs a refusal.

A refusal for someone who may not know that the object exists is
``hidden``: it is answered as ``not-found``, while the log keeps the real
reason (``not_recipient``, ``revoked`` …), so a stranger learns nothing from
the answer and an auditor loses nothing.
"""

from __future__ import annotations

from typing import Any

from carebridge.storage.db.identity import User

from ..vocabulary import LogAction, Why


class Refusal(Exception):
    """A request refused for *why*; ``detail`` is for people and never holds a secret or PHI."""

    def __init__(self, why: Why, detail: str | None = None, *, action: LogAction | None = None,
                 object: str | None = None, actor: User | None = None, hidden: bool = False,
                 token_id: str | None = None, retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(why.value)
        self.why, self.detail, self.action, self.object = why, detail, action, object
        self.actor, self.hidden, self.token_id = actor, hidden, token_id
        self.retry_after, self.extra = retry_after, extra

    @property
    def answer(self) -> Why:
        """What the client is told: the reason, or not-found when it is hidden."""
        return Why.not_found if self.hidden else self.why

    def __repr__(self) -> str:
        return f"Refusal({self.why.value!r}, action={self.action and self.action.value!r})"


class acting:  # noqa: N801 (used as a context manager, like contextlib's)
    """``with acting(user, action=…, object=…):`` fills in who (and on what) for any Refusal
    raised inside, where it did not say. A class, not a generator: it is on every decision's path."""

    __slots__ = ("_actor", "_action", "_object")

    def __init__(self, actor: User | None, *, action: LogAction | None = None, object: str | None = None) -> None:
        self._actor, self._action, self._object = actor, action, object

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, refusal, tb) -> bool:
        if isinstance(refusal, Refusal):
            refusal.actor = refusal.actor or self._actor
            refusal.action = refusal.action or self._action
            refusal.object = refusal.object or self._object
        return False
