"""How the API writes values that several handlers share: times."""

from __future__ import annotations

from datetime import datetime


def iso(moment: datetime | None) -> str | None:
    """A UTC time as the API writes it everywhere, ``YYYY-MM-DDTHH:MM:SSZ`` (None stays None)."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
