"""The one exception root of :mod:`carebridge.policies` and its branches.

Decisions are never exceptions: a denied action is a
:class:`~carebridge.policies.model.Decision`, not a raise. Exceptions mean that
an *input* (a sender's policy JSON, a configured limit, a stored document
state) is not valid, and they say which field is wrong. Messages never echo a
rejected value, only its place, so they are safe to show a client.
"""

from __future__ import annotations

__all__ = ["PolicyError", "PolicyValidationError"]


class PolicyError(Exception):
    """Root of every error raised by :mod:`carebridge.policies`."""


class PolicyValidationError(PolicyError, ValueError):
    """An input is not valid; the message is ``"<field>: <what is wrong>"``.

    ``field`` holds the field's path on its own (``recipients[2]``,
    ``expires_at``), so the gateway can put it into a problem+json body
    without parsing the message.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
