"""Partial bundles' claims: a range is complete, a selection matches. See :mod:`.audit_bundle`.

A partial bundle whose filters name no content (only ``start``, ``end``,
``since``, ``until``) is a *range*: its entries are one run of consecutive
``seq`` values, from the first entry of the range (or the boundary entry
just before the time window) to the last (or the boundary entry just after
it). Log times never decrease along ``seq`` (the ledger reads its clock
inside the append lock), so an entry before ``since`` at the start of the
run and one at or after ``until`` at its end show that no entry of the
window lies outside the run; each entry's inclusion proof shows the run is
the log's. A selection's entries each match its filters; that none is
missing cannot be shown without the whole log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from carebridge.crypto._audit_format import INCONCLUSIVE, MALFORMED, TAMPERED
from carebridge.crypto.errors import AuditBundleError

# Filters that select by content, and the entry field each one compares: with
# any of them a bundle is a selection, whose completeness cannot be shown
# without the whole log.
CONTENT_FIELDS: Final = {"org": "org", "document": "object", "actor": "actor", "action": "action",
                         "outcome": "outcome"}  # fmt: skip
CONTENT_FILTERS: Final = frozenset(CONTENT_FIELDS)

_BEFORE, _INSIDE, _AFTER = "before", "inside", "after"


def is_range(filters: Mapping[str, object]) -> bool:
    """Report whether a partial bundle's filters make it a range (see the module doc)."""
    return not CONTENT_FILTERS.intersection(filters)


def parse_time(text: object, what: str, kind: str = MALFORMED) -> datetime:
    """An RFC 3339 time with a zone; raises :class:`AuditBundleError` naming ``what``."""
    moment = None
    if isinstance(text, str) and len(text) <= 64:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise AuditBundleError(f"{what} is not an RFC 3339 time with a zone", kind=kind)
    return moment


def time_window(filters: Mapping[str, str | int]) -> tuple[datetime | None, datetime | None]:
    """The ``since`` and ``until`` filters as times; raises :class:`AuditBundleError` if malformed."""
    since, until = (parse_time(filters[name], f"bundle.json: filter {name!r}") if name in filters else None
                    for name in ("since", "until"))  # fmt: skip
    if since and until and until <= since:
        raise AuditBundleError("bundle.json: filter 'until' is not later than 'since'")
    return since, until


class RangeCheck:
    """Checks, entry by entry, that a range bundle's run of entries covers its range.

    :meth:`expect` comes before an entry's inclusion proof is checked (a gap
    is named as such), :meth:`add` after; :meth:`finish` checks both ends.
    """

    def __init__(self, filters: Mapping[str, str | int], size: int) -> None:
        self.low = filters.get("start", 0)
        self.high = min(filters.get("end", size), size)
        self.since, self.until = time_window(filters)
        self.first: int | None = None
        self.last: int | None = None
        self._first_kind = self._last_kind = _INSIDE
        self._last_time: datetime | None = None
        self.boundaries = 0

    def expect(self, seq: int) -> None:
        """Refuse ``seq`` unless it follows the previous entry (no gap)."""
        if self.last is not None and seq != self.last + 1:
            missing = f"entry {seq - 1} is" if seq == self.last + 2 else f"entries {self.last + 1}..{seq - 1} are"
            raise AuditBundleError(f"{missing} missing from the range (entry {seq} follows entry {self.last})",
                                   kind=TAMPERED, seq=self.last + 1)  # fmt: skip

    def add(self, seq: int, line: bytes) -> None:
        """Take the proven entry ``seq``: place its time against the window."""
        kind = self._classify(seq, line)
        if self.last is not None and self._last_kind == _AFTER:
            raise AuditBundleError(f"entry {seq} follows entry {self.last}, which is already at or after "
                                   "'until': a range holds one boundary entry after it", kind=TAMPERED, seq=seq)
        if kind == _BEFORE and self.first is not None:
            raise AuditBundleError(f"entry {seq} is before 'since' but not the first entry: a range holds "
                                   "one boundary entry before it", kind=TAMPERED, seq=seq)  # fmt: skip
        if self.first is None:
            self.first, self._first_kind = seq, kind
        self.last, self._last_kind = seq, kind
        self.boundaries += kind != _INSIDE

    def finish(self) -> None:
        """Refuse a run that stops short of either end of the range."""
        low, high = self.low, self.high
        if self.first is None or self.last is None:
            if low < high:
                raise AuditBundleError(f"{_span(low, high - 1)} missing from the range (the bundle has no "
                                       "entries)", kind=TAMPERED, seq=low)  # fmt: skip
            return
        if self._first_kind != _BEFORE and self.first != low:
            why = " and no boundary entry shows they are before 'since'" if self.since else ""
            raise AuditBundleError(f"{_span(low, self.first - 1)} missing from the range (the first "
                                   f"entry is {self.first}{why})", kind=TAMPERED, seq=self.first - 1)  # fmt: skip
        if self._last_kind != _AFTER and self.last != high - 1:
            why = " and no boundary entry shows they are at or after 'until'" if self.until else ""
            raise AuditBundleError(f"{_span(self.last + 1, high - 1)} missing from the range (the last "
                                   f"entry is {self.last}{why})", kind=TAMPERED, seq=self.last + 1)  # fmt: skip

    def describe(self) -> str:
        """The range proven complete, for the verdict."""
        window = ""
        if self.since or self.until:
            start = self.since.isoformat() if self.since else "the start"
            end = self.until.isoformat() if self.until else "the end"
            window = f", times {start} to {end} (exclusive)"
        if self.first is None:
            return f"an empty range {self.low}..{self.high}{window}, proven complete"
        return (f"the range {self.first}..{self.last}{window} proven complete"
                + (f" ({self.boundaries} boundary {'entry' if self.boundaries == 1 else 'entries'})"
                   if self.boundaries else ""))  # fmt: skip

    def _classify(self, seq: int, line: bytes) -> str:
        if self.since is None and self.until is None:
            return _INSIDE
        moment = entry_time(seq, entry_fields(line))
        if self._last_time is not None and moment < self._last_time:
            raise AuditBundleError(f"entry {seq}'s time is earlier than entry {seq - 1}'s: the log's times "
                                   "go backwards, so a time range cannot be proven complete",
                                   kind=INCONCLUSIVE, seq=seq)  # fmt: skip
        self._last_time = moment
        if self.since is not None and moment < self.since:
            return _BEFORE
        if self.until is not None and moment >= self.until:
            return _AFTER
        return _INSIDE


def _span(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first}..{last} are"


def entry_fields(line: bytes) -> dict:
    """The entry's top-level members ({} if it is not a JSON object)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def entry_time(seq: int, fields: Mapping[str, object]) -> datetime:
    return parse_time(fields.get("time"), f"entry {seq}'s time", kind=INCONCLUSIVE)


class SelectionCheck:
    """Checks that each entry of a selection matches the filters the bundle claims.

    The same three calls as :class:`RangeCheck`; only :meth:`add` checks anything.
    """

    def __init__(self, filters: Mapping[str, str | int]) -> None:
        self.want = {field: filters[name] for name, field in CONTENT_FIELDS.items() if name in filters}
        self.since, self.until = time_window(filters)

    def expect(self, seq: int) -> None:
        """Nothing to check before the proof: a selection may skip any entry."""

    def add(self, seq: int, line: bytes) -> None:
        """Refuse the proven entry ``seq`` unless it matches every filter."""
        fields = entry_fields(line)
        for name, field in CONTENT_FIELDS.items():
            if field in self.want and fields.get(field) != self.want[field]:
                raise AuditBundleError(f"entry {seq} does not match the bundle's filter {name!r}",
                                       kind=TAMPERED, seq=seq)  # fmt: skip
        if self.since or self.until:
            moment = entry_time(seq, fields)
            if (self.since and moment < self.since) or (self.until and moment >= self.until):
                raise AuditBundleError(f"entry {seq} is outside the bundle's time window", kind=TAMPERED, seq=seq)

    def finish(self) -> None:
        """Nothing to check at the end: that no entry is missing rests on the server."""
