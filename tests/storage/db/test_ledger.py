"""The access log (storage/db/ledger.py): one gap-free order of canonical entries
whose stored bytes reproduce every RFC 6962 leaf hash (promise 4).
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from carebridge.crypto.canonical import parse_canonical_json
from carebridge.crypto.merkle import leaf_hash
from carebridge.storage.db import ledger
from carebridge.storage.db.store import Store

from tests.storage.db.factories import (
    START,
    in_one_batch,
    log_rows,
    log_unit,
    org_names,
    org_unit,
)

ENTRY_FIELDS = {"action", "actor", "client", "object", "org", "outcome", "reason",
                "request_id", "seq", "time"}
RFC3339_UTC_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
CONCURRENT_APPENDS = 500  # more than MAX_BATCH, so several group commits take part
LONGEST = "x" * ledger.MAX_FIELD_LENGTH
TOO_LONG = "x" * (ledger.MAX_FIELD_LENGTH + 1)
STR_FIELDS = ("actor", "org", "action", "object", "reason", "request_id", "client")


def _entry_time(entry: dict[str, Any]) -> datetime:
    return datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%f%z")


async def test_concurrent_appends_form_one_gap_free_order(store: Store) -> None:
    units = [log_unit(actor=f"usr_{i}", org="org_1", object=f"doc_{i}", request_id=f"req_{i}",
                      client="192.0.2.7") for i in range(CONCURRENT_APPENDS)]

    seqs = await asyncio.gather(*(store.write(unit) for unit in units))

    assert sorted(seqs) == list(range(CONCURRENT_APPENDS))
    rows = log_rows(store)
    assert [row["seq"] for row in rows] == list(range(CONCURRENT_APPENDS))
    by_actor = {}
    for row in rows:
        entry_bytes = bytes(row["entry"])
        entry = json.loads(entry_bytes)
        assert set(entry) == ENTRY_FIELDS
        assert parse_canonical_json(entry_bytes) == entry
        assert entry["seq"] == row["seq"]
        assert bytes(row["leaf_hash"]) == leaf_hash(entry_bytes)
        assert RFC3339_UTC_MICROS.match(entry["time"]), entry["time"]
        assert _entry_time(entry) == row["time"]
        for column in ("actor", "org", "action", "object", "outcome", "reason"):
            assert row[column] == entry[column]
        assert (entry["client"], entry["outcome"], entry["reason"]) == ("192.0.2.7", "allow", "ok")
        by_actor[entry["actor"]] = entry
    # Each caller got the seq of its own entry.
    for i, seq in enumerate(seqs):
        assert by_actor[f"usr_{i}"]["seq"] == seq
        assert by_actor[f"usr_{i}"]["request_id"] == f"req_{i}"
    # The seq order is the order the units ran in: the ticking clock is read
    # once per unit, so entry times rise strictly with seq.
    times = [row["time"] for row in rows]
    assert times == sorted(set(times))


async def test_entry_bytes_are_exactly_what_the_docs_say(store: Store) -> None:
    await store.write(log_unit(action="doc.download", outcome="deny", reason="expired",
                               actor="usr_1", org="org_1", object="doc_1"))

    (row,) = log_rows(store)
    assert bytes(row["entry"]) == (
        b'{"action":"doc.download","actor":"usr_1","client":null,"object":"doc_1","org":"org_1",'
        b'"outcome":"deny","reason":"expired","request_id":null,"seq":0,'
        b'"time":"2026-03-01T09:30:00.000000Z"}')
    assert row["time"] == START


async def test_entry_time_is_utc_whatever_the_clock_zone(open_store) -> None:
    # 11:30:00.123456 at +02:00 is 09:30:00.123456 UTC.
    moment = datetime(2026, 3, 1, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    store = open_store(clock=lambda: moment)

    await store.write(log_unit())

    (row,) = log_rows(store)
    assert row["time"] == moment
    assert json.loads(row["entry"])["time"] == "2026-03-01T09:30:00.123456Z"


async def test_read_entries_pages_through_the_stored_bytes(store: Store) -> None:
    await asyncio.gather(*(store.write(log_unit(actor=f"usr_{i}")) for i in range(25)))
    stored = {row["seq"]: bytes(row["entry"]) for row in log_rows(store)}

    window = await store.read(lambda conn: list(ledger.read_entries(conn, start=10, limit=7)))
    everything = await store.read(lambda conn: list(ledger.read_entries(conn)))
    past_the_end = await store.read(lambda conn: list(ledger.read_entries(conn, start=25)))

    assert window == [(seq, stored[seq]) for seq in range(10, 17)]
    assert all(type(entry) is bytes for _, entry in window)
    assert everything == sorted(stored.items())
    assert past_the_end == []


# -- bad entries ---------------------------------------------------------------------

BAD_ENTRIES = {
    "unknown outcome": {"outcome": "maybe"},
    "outcome in capitals": {"outcome": "ALLOW"},
    **{f"{name} too long": {name: TOO_LONG} for name in STR_FIELDS},
    "actor not a string": {"actor": 7},
    "action missing (None)": {"action": None},
    "reason missing (None)": {"reason": None},
}


@pytest.mark.parametrize("fields", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_append_refuses_bad_fields_with_value_error(fields: dict[str, Any]) -> None:
    appender = ledger.Appender(next_seq=5)
    good = {"action": "doc.upload", "outcome": "allow", "reason": "ok"}

    with pytest.raises(ValueError):
        appender.append(time=START, **(good | fields))

    assert appender.mark() == 5  # no seq was handed out
    assert appender.append(time=START, **good) == 5


# The bad entries that reach the database through the Store, one per kind.
BAD_THROUGH_STORE = {k: BAD_ENTRIES[k] for k in
                     ("unknown outcome", "object too long", "action missing (None)")}


@pytest.mark.parametrize("fields", BAD_THROUGH_STORE.values(), ids=BAD_THROUGH_STORE.keys())
async def test_bad_entry_fails_only_its_own_unit(store: Store, fields: dict[str, Any]) -> None:
    def bad(tx):
        org_unit("org_bad")(tx)
        return tx.log(**({"action": "doc.upload", "outcome": "allow", "reason": "ok"} | fields))

    results = await in_one_batch(store, [org_unit("org_a"), bad, org_unit("org_b")])

    assert isinstance(results[1], ValueError), results
    assert results[0::2] == [0, 1]
    assert org_names(store) == {"org_a", "org_b"}
    assert [row["object"] for row in log_rows(store)] == ["org_a", "org_b"]


async def test_longest_allowed_fields_are_stored(store: Store) -> None:
    """Every field at MAX_FIELD_LENGTH is accepted by append, so the columns must hold it."""
    fields = dict.fromkeys(STR_FIELDS, LONGEST)

    results = await in_one_batch(store, [org_unit("org_a"), log_unit(**fields)])

    assert results == [0, 1]
    row = log_rows(store)[1]
    assert {name: row[name] for name in ("actor", "org", "action", "object", "reason")} == \
        dict.fromkeys(("actor", "org", "action", "object", "reason"), LONGEST)
    assert json.loads(row["entry"])["client"] == LONGEST
