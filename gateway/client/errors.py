"""The client's errors for the CLI and SDK callers (one line each, never a secret)."""

from __future__ import annotations


class TransferError(Exception):
    """A send or fetch that must not go on; the message says why."""
