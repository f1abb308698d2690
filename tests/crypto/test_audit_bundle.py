"""Tests for carebridge.crypto.audit_bundle: the officer's offline verification.

Each tamper test builds a log (:mod:`.audit_factories`), exports a bundle,
changes it the way an attacker or an accident would, and checks that
verification fails with the right failure class, names the first bad entry
where one is to blame, and says so in words. Then Hypothesis: any flipped
byte of a signed member fails, and no input at all makes verification raise.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import warnings
import zipfile
from datetime import datetime

import pytest
from carebridge.crypto import merkle, note
from carebridge.crypto.audit_bundle import (
    FORK,
    INCONCLUSIVE,
    MALFORMED,
    MAX_ENTRY_SIZE,
    MAX_HEADER_SIZE,
    TAMPERED,
    UNTRUSTED,
    BundleHeader,
    BundleWriter,
    Consistency,
    Verdict,
    entry_seq,
    verify_bundle,
)
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.errors import AuditBundleError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .audit_factories import ORIGIN, Log, lines, make_entry, members, rezip, zip_of

SIZE = 40
# A selection (a content filter) that every synthetic entry matches.
EVERY = {"org": "o_clinic"}


def verify(bundle: bytes, **kwargs) -> Verdict:
    return verify_bundle(io.BytesIO(bundle), **kwargs)


def failed(verdict: Verdict, kind: str, match: str, *, seq: int | None | type[Ellipsis] = ...) -> None:
    assert not verdict.ok, verdict
    assert verdict.kind == kind, verdict
    assert re.search(match, verdict.message), verdict.message
    assert "\n" not in verdict.message
    if seq is not ...:
        assert verdict.first_bad_seq == seq, verdict


@pytest.fixture(scope="module")
def log() -> Log:
    return Log(SIZE, seed=7)


@pytest.fixture(scope="module")
def bundle(log: Log) -> bytes:
    return log.full_bundle()


def with_entries(bundle: bytes, entry_lines: list[bytes]) -> bytes:
    return rezip(bundle, entries_jsonl=b"".join(entry_lines))


# -- happy paths ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 7, 1024, 1025, 2100])
def test_full_bundle_verifies(size: int) -> None:
    log = Log(size, seed=size)
    verdict = verify(log.full_bundle(), verifier_key=log.verifier_key)
    assert verdict.ok, verdict.message
    assert (verdict.entries_checked, verdict.checkpoint_size, verdict.full) == (size, size, True)
    assert verdict.key == f"{ORIGIN}+{log.signer.key_id:08x}" and verdict.key_pinned
    assert verdict.message.startswith(f"{size} entr")
    assert f"checkpoint of size {size} by {verdict.key} ({verdict.key_fingerprint})" in verdict.message


def test_full_bundle_of_an_older_size(log: Log) -> None:
    verdict = verify(log.full_bundle(25), previous=log.checkpoint(9))
    assert verdict.ok, verdict.message
    assert (verdict.entries_checked, verdict.checkpoint_size, verdict.previous_size) == (25, 25, 9)
    assert not verdict.key_pinned and "not pinned" in verdict.message


@pytest.mark.parametrize("previous", [0, 1, 10, 1024, 1500, 2100])
def test_full_bundle_consistent_with_previous(previous: int) -> None:
    log = Log(2100, seed=3)
    verdict = verify(log.full_bundle(), previous=log.checkpoint(previous), verifier_key=log.verifier_key)
    assert verdict.ok, verdict.message
    assert f"consistent with the previous checkpoint of size {previous}" in verdict.message


def test_partial_bundle_verifies(log: Log) -> None:
    seqs = [seq for seq, entry in enumerate(log.entries) if json.loads(entry)["action"] == "auth"]
    assert 3 <= len(seqs) < SIZE
    verdict = verify(log.partial_bundle(seqs, filters={"action": "auth", "start": 0, "end": 40}))
    assert verdict.ok, verdict.message
    assert (verdict.entries_checked, verdict.checkpoint_size, verdict.full) == (len(seqs), SIZE, False)
    assert "filtered selection" in verdict.message and "not that none is missing" in verdict.message
    assert verdict.complete is False


def test_empty_partial_bundle_verifies(log: Log) -> None:
    verdict = verify(log.partial_bundle([], filters={"actor": "u_nobody"}), verifier_key=log.verifier_key)
    assert verdict.ok and verdict.entries_checked == 0, verdict.message


@pytest.mark.parametrize("previous", [0, 1, 13, SIZE])
def test_partial_bundle_consistent_with_previous(log: Log, previous: int) -> None:
    partial = log.partial_bundle(range(5, SIZE), filters={"start": 5}, previous_size=previous)
    verdict = verify(partial, previous=log.checkpoint(previous))
    assert verdict.ok, verdict.message
    assert verdict.previous_size == previous


def test_bundles_are_deterministic(log: Log) -> None:
    assert log.full_bundle() == log.full_bundle()
    names = [info.filename for info in zipfile.ZipFile(io.BytesIO(log.full_bundle())).infolist()]
    assert names == ["bundle.json", "checkpoint", "entries.jsonl", "leaves.bin"]


def test_a_partial_bundle_cannot_prove_its_selection_complete(log: Log) -> None:
    """Dropping an entry and its proof from a selection is not detectable: the message says so."""
    partial = log.partial_bundle([1, 2, 3], filters=EVERY)
    contents = members(partial)
    dropped = rezip(partial, entries_jsonl=b"".join(lines(contents["entries.jsonl"])[::2]),
                    proofs_jsonl=b"".join(lines(contents["proofs.jsonl"])[::2]))  # fmt: skip
    verdict = verify(dropped)
    assert verdict.ok and verdict.entries_checked == 2
    assert "each entry proven in the log" in verdict.message and verdict.complete is False


# -- ranges: proven complete ------------------------------------------------------------


def at(seq: int, fraction: str = "000000") -> str:
    """The time of the synthetic entry ``seq`` (one a second), or a moment just after it."""
    return f"2025-01-01T00:00:{seq:02d}.{fraction}Z"


def honest_run(log: Log, filters: dict, size: int = SIZE) -> list[int]:
    """The seqs an honest exporter puts in a range bundle, found by reading every entry."""
    low, high = filters.get("start", 0), min(filters.get("end", size), size)
    times = {seq: datetime.fromisoformat(json.loads(log.entries[seq])["time"]) for seq in range(low, high)}
    since, until = (datetime.fromisoformat(filters.get(name, default)) for name, default in
                    (("since", "0001-01-01T00:00:00Z"), ("until", "9999-12-31T00:00:00Z")))  # fmt: skip
    inside = [s for s in range(low, high) if since <= times[s] < until]
    first = inside[0] if inside else next((s for s in range(low, high) if times[s] >= since), high)
    last = inside[-1] if inside else first - 1
    if "since" in filters and first > low:
        first -= 1
    if "until" in filters and last + 1 < high:
        last += 1
    return list(range(first, last + 1))


def range_bundle(log: Log, filters: dict) -> bytes:
    return log.partial_bundle(honest_run(log, filters), filters=filters)


def without(bundle: bytes, *, entries: list[int] = (), proofs: list[int] = ()) -> bytes:
    """``bundle`` with the entry lines and proof lines at these positions dropped."""
    contents = members(bundle)
    kept_entries = [x for i, x in enumerate(lines(contents["entries.jsonl"])) if i not in entries]
    kept_proofs = [x for i, x in enumerate(lines(contents["proofs.jsonl"])) if i not in proofs]
    return rezip(bundle, entries_jsonl=b"".join(kept_entries), proofs_jsonl=b"".join(kept_proofs))


def with_filters(bundle: bytes, filters: dict) -> bytes:
    header = json.loads(members(bundle)["bundle.json"])
    return rezip(bundle, bundle_json=canonical_json({**header, "filters": filters}))


@pytest.mark.parametrize(("filters", "run", "described"), [
    ({"start": 5, "end": 12}, range(5, 12), "the range 5..11 proven complete"),
    ({"start": 30}, range(30, SIZE), "the range 30..39 proven complete"),
    ({"end": 3}, range(0, 3), "the range 0..2 proven complete"),
    ({"end": 99}, range(0, SIZE), "the range 0..39 proven complete"),
    ({"since": at(10), "until": at(20)}, range(9, 21), "(2 boundary entries)"),
    ({"since": at(0), "until": at(5)}, range(0, 6), "(1 boundary entry)"),  # the window starts the log
    ({"since": at(35, "5")}, range(35, SIZE), "(1 boundary entry)"),  # ... runs to its end
    ({"since": at(7, "1"), "until": at(7, "9")}, range(7, 9), "(2 boundary entries)"),  # empty window
    ({"since": at(10), "until": at(20), "start": 12, "end": 15}, range(12, 15), "the range 12..14,"),
    ({"start": 40}, range(0), "an empty range 40..40"),
])  # fmt: skip
def test_range_bundle_verifies(log: Log, filters: dict, run: range, described: str) -> None:
    assert honest_run(log, filters) == list(run)  # the helper builds what the exporter does
    verdict = verify(range_bundle(log, filters), verifier_key=log.verifier_key)
    assert verdict.ok, verdict.message
    assert verdict.complete is True and verdict.entries_checked == len(run)
    assert described in verdict.message and "proven complete" in verdict.message


@pytest.mark.parametrize("with_proof", [True, False])
def test_range_entry_deleted(log: Log, with_proof: bool) -> None:
    bundle = range_bundle(log, {"start": 5, "end": 12})
    cut = without(bundle, entries=[3], proofs=[3] if with_proof else [])
    failed(verify(cut), TAMPERED, r"^entry 8 is missing from the range \(entry 9 follows entry 7\)$", seq=8)
    cut = without(bundle, entries=[2, 3], proofs=[2, 3])
    failed(verify(cut), TAMPERED, r"^entries 7\.\.8 are missing from the range", seq=7)


@pytest.mark.parametrize(("position", "match", "seq"), [
    (0, r"^entry 5 is missing from the range \(the first entry is 6\)$", 5),
    (-1, r"^entry 11 is missing from the range \(the last entry is 10\)$", 11),
])  # fmt: skip
def test_range_end_entry_deleted(log: Log, position: int, match: str, seq: int) -> None:
    bundle = range_bundle(log, {"start": 5, "end": 12})
    index = position % 7
    failed(verify(without(bundle, entries=[index], proofs=[index])), TAMPERED, match, seq=seq)


def test_range_entry_repeated_or_reordered(log: Log) -> None:
    bundle = range_bundle(log, {"start": 5, "end": 12})
    entries, proofs = lines(members(bundle)["entries.jsonl"]), lines(members(bundle)["proofs.jsonl"])
    repeated = rezip(bundle, entries_jsonl=b"".join(entries[:4] + entries[3:]),
                     proofs_jsonl=b"".join(proofs[:4] + proofs[3:]))  # fmt: skip
    failed(verify(repeated), TAMPERED, "entry 8 comes after entry 8", seq=8)
    entries[2], entries[3] = entries[3], entries[2]
    proofs[2], proofs[3] = proofs[3], proofs[2]
    moved = rezip(bundle, entries_jsonl=b"".join(entries), proofs_jsonl=b"".join(proofs))
    failed(verify(moved), TAMPERED, r"^entry 7 is missing from the range \(entry 8 follows entry 6\)$", seq=7)


@pytest.mark.parametrize(("drop", "match", "seq"), [
    (0, r"^entries 0\.\.9 are missing from the range \(the first entry is 10 and no boundary entry shows "
        r"they are before 'since'\)$", 9),
    (-1, r"^entries 20\.\.39 are missing from the range \(the last entry is 19 and no boundary entry shows "
         r"they are at or after 'until'\)$", 20),
])  # fmt: skip
def test_time_range_boundary_entry_dropped(log: Log, drop: int, match: str, seq: int) -> None:
    bundle = range_bundle(log, {"since": at(10), "until": at(20)})
    index = drop % 12
    failed(verify(without(bundle, entries=[index], proofs=[index])), TAMPERED, match, seq=seq)


def test_time_range_without_boundaries_from_an_older_exporter(log: Log) -> None:
    """Before step 6, a time range held only the entries inside the window: not provably complete."""
    filters = {"since": at(10), "until": at(20)}
    failed(verify(log.partial_bundle(range(10, 20), filters=filters)), TAMPERED,
           r"^entries 0\.\.9 are missing", seq=9)  # fmt: skip


def test_range_claim_narrower_than_the_entries(log: Log) -> None:
    """bundle.json rewritten to claim less than the server exported: the extra entries give it away."""
    bundle = range_bundle(log, {"start": 5, "end": 12})
    failed(verify(with_filters(bundle, {"start": 6, "end": 12})), TAMPERED,
           r"^entry 5 is outside the bundle's range 6\.\.11$", seq=5)  # fmt: skip
    failed(verify(with_filters(bundle, {"start": 5, "end": 11})), TAMPERED,
           r"^entry 11 is outside the bundle's range 5\.\.10$", seq=11)  # fmt: skip
    timed = range_bundle(log, {"since": at(10), "until": at(20)})
    failed(verify(with_filters(timed, {"since": at(10), "until": at(15)})), TAMPERED,
           r"^entry 16 follows entry 15, which is already at or after 'until'", seq=16)  # fmt: skip
    failed(verify(with_filters(timed, {"since": at(12), "until": at(20)})), TAMPERED,
           r"^entry 10 is before 'since' but not the first entry", seq=10)  # fmt: skip


def test_range_claim_wider_than_the_entries(log: Log) -> None:
    """The entries stop short of what bundle.json claims (a range silently narrowed)."""
    bundle = range_bundle(log, {"start": 5, "end": 12})
    failed(verify(with_filters(bundle, {"start": 5})), TAMPERED, r"^entries 12\.\.39 are missing", seq=12)
    failed(verify(with_filters(bundle, {"start": 2, "end": 12})), TAMPERED, r"^entries 2\.\.4 are missing", seq=4)
    timed = range_bundle(log, {"since": at(10), "until": at(20)})
    failed(verify(with_filters(timed, {"since": at(9), "until": at(20)})), TAMPERED,
           r"^entries 0\.\.8 are missing .* before 'since'", seq=8)  # fmt: skip
    failed(verify(with_filters(timed, {"since": at(10)})), TAMPERED, r"^entries 21\.\.39 are missing", seq=21)


def test_time_range_in_a_log_whose_times_go_backwards() -> None:
    log = Log(0)
    for seq, second in enumerate([1, 2, 3, 5, 4, 6, 7]):
        log.append(make_entry(seq, log.rng, time=at(second)))
    failed(verify(log.partial_bundle(range(1, 6), filters={"since": at(2), "until": at(6)})), INCONCLUSIVE,
           r"^entry 4's time is earlier than entry 3's: the log's times go backwards", seq=4)  # fmt: skip


RANGE_LOG = Log(SIZE, seed=13)
_MOMENTS = st.integers(0, 2 * SIZE + 1).map(lambda s: at(s // 2, "500000" if s % 2 else "000000"))  # on, between
RANGE_FILTERS = {"start": st.integers(0, SIZE), "end": st.integers(0, SIZE + 3), "since": _MOMENTS, "until": _MOMENTS}


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_property_any_range_verifies_and_any_dropped_entry_fails(data: st.DataObject) -> None:
    """Random seq/time ranges: the honest run verifies; without any one of its entries, it fails."""
    filters: dict = {}
    for name, strategy in RANGE_FILTERS.items():
        if data.draw(st.booleans(), label=f"has {name}"):
            filters[name] = data.draw(strategy, label=name)
    if "since" in filters and "until" in filters and filters["until"] <= filters["since"]:
        del filters["until"]  # refused as malformed: another test
    run = honest_run(RANGE_LOG, filters)
    bundle = range_bundle(RANGE_LOG, filters)
    verdict = verify(bundle)
    assert verdict.ok and verdict.complete and verdict.entries_checked == len(run), (filters, verdict.message)
    if run:
        index = data.draw(st.integers(0, len(run) - 1), label="dropped")
        verdict = verify(without(bundle, entries=[index], proofs=[index]))
        assert not verdict.ok and verdict.kind == TAMPERED and "missing" in verdict.message, (filters, verdict)


@pytest.mark.parametrize(("filters", "match"), [
    ({"since": "yesterday"}, "filter 'since' is not an RFC 3339 time with a zone"),
    ({"until": "2025-01-01T00:00:00"}, "filter 'until' is not an RFC 3339 time with a zone"),
    ({"since": at(5), "until": at(5)}, "filter 'until' is not later than 'since'"),
])  # fmt: skip
def test_range_with_a_bad_time_filter(log: Log, filters: dict, match: str) -> None:
    failed(verify(log.partial_bundle(range(3, 7), filters=filters)), MALFORMED, match)


def test_selection_entry_that_does_not_match_its_filter(log: Log) -> None:
    auth = [seq for seq, entry in enumerate(log.entries) if json.loads(entry)["action"] == "auth"]
    other = next(seq for seq in range(SIZE) if seq not in auth)
    bundle = log.partial_bundle(sorted([*auth[:2], other]), filters={"action": "auth"})
    failed(verify(bundle), TAMPERED, rf"^entry {other} does not match the bundle's filter 'action'$", seq=other)
    timed = log.partial_bundle([3, 4, 9], filters={**EVERY, "until": at(9)})
    failed(verify(timed), TAMPERED, r"^entry 9 is outside the bundle's time window$", seq=9)


# -- entries changed -----------------------------------------------------------------


def test_modified_entry(bundle: bytes) -> None:
    entries = lines(members(bundle)["entries.jsonl"])
    entries[17] = entries[17].replace(b'"reason":"ok"', b'"reason":"ko"')
    failed(verify(with_entries(bundle, entries)), TAMPERED, r"^entry 17 does not match leaf 17", seq=17)


def test_deleted_entry(bundle: bytes) -> None:
    entries = lines(members(bundle)["entries.jsonl"])
    del entries[17]
    failed(verify(with_entries(bundle, entries)), TAMPERED, r"^entry 17 does not match leaf 17", seq=17)


def test_inserted_entry(bundle: bytes) -> None:
    entries = lines(members(bundle)["entries.jsonl"])
    entries.insert(17, make_entry(17, random.Random(99)) + b"\n")
    failed(verify(with_entries(bundle, entries)), TAMPERED, r"^entry 17 does not match", seq=17)


def test_two_entries_reordered(bundle: bytes) -> None:
    entries = lines(members(bundle)["entries.jsonl"])
    entries[20], entries[21] = entries[21], entries[20]
    failed(verify(with_entries(bundle, entries)), TAMPERED, r"^entry 20 does not match", seq=20)


def test_entries_cut(bundle: bytes) -> None:
    entries = lines(members(bundle)["entries.jsonl"])
    verdict = verify(with_entries(bundle, entries[:35]))
    failed(verdict, TAMPERED, r"entries.jsonl is cut: 35 of 40 entries", seq=35)
    assert verdict.entries_checked == 35


def test_entries_cut_mid_line(bundle: bytes) -> None:
    data = members(bundle)["entries.jsonl"]
    failed(verify(rezip(bundle, entries_jsonl=data[:-10])), TAMPERED, "does not end in a newline", seq=39)


def test_entry_appended(log: Log, bundle: bytes) -> None:
    entries = lines(members(bundle)["entries.jsonl"]) + [make_entry(SIZE, random.Random(1)) + b"\n"]
    failed(verify(with_entries(bundle, entries)), TAMPERED, "more than the checkpoint's 40 entries", seq=SIZE)


def test_entry_and_its_leaf_changed_together(bundle: bytes) -> None:
    contents = members(bundle)
    entries = lines(contents["entries.jsonl"])
    entries[5] = make_entry(5, random.Random(5)) + b"\n"
    leaves = bytearray(contents["leaves.bin"])
    leaves[5 * 32 : 6 * 32] = merkle.leaf_hash(entries[5][:-1])
    tampered = rezip(bundle, entries_jsonl=b"".join(entries), leaves_bin=bytes(leaves))
    failed(verify(tampered), TAMPERED, r"^leaves.bin does not lead to the checkpoint's root hash")


def test_entry_logged_with_the_wrong_seq() -> None:
    """The log itself signed an entry whose seq is not its position: the log is inconsistent."""
    log = Log(10)
    log.append(make_entry(11, log.rng))
    log.extend(3)
    failed(verify(log.full_bundle()), TAMPERED, r"^entry 10 says it is seq 11$", seq=10)


def test_entry_logged_without_a_seq() -> None:
    log = Log(3)
    log.append(b'{"action":"auth","outcome":"deny"}')
    failed(verify(log.full_bundle()), TAMPERED, r"^entry 3: entry has no integer seq", seq=3)


def test_entry_longer_than_the_limit() -> None:
    log = Log(2)
    log.append(make_entry(2, log.rng, reason="x" * (MAX_ENTRY_SIZE + 1)))
    log.extend(1)
    failed(verify(log.full_bundle()), TAMPERED, f"line 2 is longer than {MAX_ENTRY_SIZE} bytes", seq=2)


# -- leaves changed ------------------------------------------------------------------


def test_leaves_cut(bundle: bytes) -> None:
    leaves = members(bundle)["leaves.bin"]
    failed(verify(rezip(bundle, leaves_bin=leaves[:-32])), TAMPERED, r"leaves.bin is cut or padded: 1248 bytes")


def test_leaves_and_entries_cut_together(bundle: bytes) -> None:
    """A consistent bundle of 39 entries, but the checkpoint says 40."""
    contents = members(bundle)
    cut = rezip(bundle, leaves_bin=contents["leaves.bin"][:-32],
                entries_jsonl=b"".join(lines(contents["entries.jsonl"])[:-1]))  # fmt: skip
    failed(verify(cut), TAMPERED, "leaves.bin is cut or padded")


def test_leaf_changed(bundle: bytes) -> None:
    leaves = bytearray(members(bundle)["leaves.bin"])
    leaves[33] ^= 1
    failed(verify(rezip(bundle, leaves_bin=bytes(leaves))), TAMPERED,
           "leaves.bin does not lead to the checkpoint's root hash", seq=1)  # fmt: skip


# -- the checkpoint swapped or forged ---------------------------------------------------


def test_checkpoint_of_another_size(log: Log, bundle: bytes) -> None:
    failed(verify(rezip(bundle, checkpoint=log.checkpoint(30))), TAMPERED,
           "bundle.json says size 40, the signed checkpoint is of size 30")  # fmt: skip


def test_checkpoint_and_header_of_another_size(log: Log, bundle: bytes) -> None:
    header = json.loads(members(bundle)["bundle.json"])
    header["checkpoint_size"] = 30
    swapped = rezip(bundle, checkpoint=log.checkpoint(30), bundle_json=canonical_json(header))
    failed(verify(swapped), TAMPERED, "leaves.bin is cut or padded")


def test_checkpoint_signed_by_another_key(log: Log, bundle: bytes) -> None:
    other = note.Signer.generate(ORIGIN)
    failed(verify(rezip(bundle, checkpoint=log.checkpoint(signer=other))), UNTRUSTED,
           "no signature from a known key")  # fmt: skip


def test_bundle_of_another_log_fails_against_the_pinned_key(log: Log) -> None:
    impostor = Log(SIZE, seed=7)  # the same entries, its own key with the same name
    assert verify(impostor.full_bundle()).ok  # self-consistent: only the pinned key tells
    failed(verify(impostor.full_bundle(), verifier_key=log.verifier_key), UNTRUSTED,
           f"names the key {re.escape(ORIGIN)}\\+{impostor.signer.key_id:08x}, not the pinned key")  # fmt: skip


def test_forged_signature(bundle: bytes) -> None:
    checkpoint = members(bundle)["checkpoint"]
    text, _, signature = checkpoint.rstrip(b"\n").rpartition(b" ")
    raw = bytearray(base64.b64decode(signature))
    raw[10] ^= 0x40
    forged = text + b" " + base64.b64encode(bytes(raw)) + b"\n"
    failed(verify(rezip(bundle, checkpoint=forged)), UNTRUSTED, "invalid signature by known key")


def test_checkpoint_from_another_origin(log: Log, bundle: bytes) -> None:
    other = log.checkpoint(origin="other.example.test/log")
    failed(verify(rezip(bundle, checkpoint=other)), UNTRUSTED, "checkpoint is for origin 'other.example.test/log'")


def test_header_claims_another_origin(bundle: bytes) -> None:
    header = json.loads(members(bundle)["bundle.json"])
    header["origin"] = "other.example.test/log"
    failed(verify(rezip(bundle, bundle_json=canonical_json(header))), UNTRUSTED, "checkpoint is for origin")


# -- forks and rewritten history --------------------------------------------------------


def test_fork_two_histories_of_one_size() -> None:
    signer = note.Signer.generate(ORIGIN)
    history_a, history_b = Log(20, seed=1, signer=signer), Log(20, seed=2, signer=signer)
    verdict = verify(history_b.full_bundle(), previous=history_a.checkpoint(), verifier_key=signer.verifier.encode())
    failed(verdict, FORK, r"^two different logs of size 20")
    partial = history_b.partial_bundle([3], previous_size=20)
    failed(verify(partial, previous=history_a.checkpoint()), FORK, "does not extend the previous checkpoint")


def test_rewritten_history() -> None:
    signer = note.Signer.generate(ORIGIN)
    history_a = Log(10, seed=1, signer=signer)
    history_b = Log(20, seed=2, signer=signer)  # its first 10 entries differ from A's
    assert verify(history_b.full_bundle()).ok
    failed(verify(history_b.full_bundle(), previous=history_a.checkpoint()), FORK,
           r"^history rewritten: the first 10 entries differ")  # fmt: skip
    partial = history_b.partial_bundle([12, 15], previous_size=10)
    failed(verify(partial, previous=history_a.checkpoint()), FORK, "fork or rewritten history")


def test_one_rewritten_entry_in_the_past() -> None:
    signer = note.Signer.generate(ORIGIN)
    honest = Log(30, seed=4, signer=signer)
    rewritten = Log(0, seed=4, signer=signer)
    for seq, entry in enumerate(honest.entries):
        rewritten.append(make_entry(seq, random.Random(0), outcome="allow") if seq == 6 else entry)
    failed(verify(rewritten.full_bundle(), previous=honest.checkpoint(12)), FORK, "history rewritten")
    assert verify(rewritten.full_bundle(), previous=honest.checkpoint(6)).ok  # before the change


def test_previous_checkpoint_newer_than_the_bundle(log: Log) -> None:
    failed(verify(log.full_bundle(10), previous=log.checkpoint(11)), INCONCLUSIVE,
           r"previous checkpoint \(size 11\) is newer than the bundle's \(size 10\)")  # fmt: skip


def test_previous_checkpoint_of_another_key(log: Log, bundle: bytes) -> None:
    other = Log(5, seed=1)
    failed(verify(bundle, previous=other.checkpoint()), UNTRUSTED, "^previous checkpoint is not a checkpoint")
    failed(verify(bundle, previous=b"not a checkpoint"), UNTRUSTED, "^previous checkpoint")


def test_partial_bundle_without_the_consistency_proof(log: Log) -> None:
    failed(verify(log.partial_bundle([1]), previous=log.checkpoint(5)), INCONCLUSIVE,
           "no consistency proof from size 5")  # fmt: skip
    failed(verify(log.partial_bundle([1], previous_size=4), previous=log.checkpoint(5)), INCONCLUSIVE,
           "no consistency proof from size 5")  # fmt: skip


# -- partial bundles changed --------------------------------------------------------------


def test_partial_entry_modified(log: Log) -> None:
    partial = log.partial_bundle([2, 9, 30], filters=EVERY)
    entries = lines(members(partial)["entries.jsonl"])
    entries[1] = make_entry(9, random.Random(3)) + b"\n"
    failed(verify(rezip(partial, entries_jsonl=b"".join(entries))), TAMPERED,
           "^entry 9 is not in the log as it stands", seq=9)  # fmt: skip


@pytest.mark.parametrize(("order", "match", "seq"), [
    ([9, 2, 30], "entry 2 comes after entry 9", 2),
    ([2, 9, 9], "entry 9 comes after entry 9", 9),
])  # fmt: skip
def test_partial_entries_out_of_order(log: Log, order: list[int], match: str, seq: int) -> None:
    failed(verify(log.partial_bundle(order, filters=EVERY)), TAMPERED, match, seq=seq)


def test_partial_proofs_swapped(log: Log) -> None:
    partial = log.partial_bundle([2, 9], filters=EVERY)
    proofs = lines(members(partial)["proofs.jsonl"])
    failed(verify(rezip(partial, proofs_jsonl=b"".join(proofs[::-1]))), TAMPERED,
           "entry 2 comes with the proof for entry 9", seq=2)  # fmt: skip


def test_partial_proof_missing_or_extra(log: Log) -> None:
    partial = log.partial_bundle([2, 9], filters=EVERY)
    proofs = lines(members(partial)["proofs.jsonl"])
    failed(verify(rezip(partial, proofs_jsonl=proofs[0])), TAMPERED, "proofs.jsonl ends before entry 9", seq=9)
    failed(verify(rezip(partial, proofs_jsonl=b"".join(proofs + proofs[:1]))), TAMPERED, "more lines")


def test_partial_entry_outside_its_range(log: Log) -> None:
    failed(verify(log.partial_bundle([3, 12], filters={"start": 5})), TAMPERED, "entry 3 is outside", seq=3)
    failed(verify(log.partial_bundle([3, 12], filters={"end": 10})), TAMPERED, "entry 12 is outside", seq=12)


def test_partial_entry_proven_at_another_position(log: Log) -> None:
    """Entry 4's bytes with seq claim and proof of 5: the proof does not lead to the root."""
    partial = log.partial_bundle([5], filters=EVERY)
    fake_proof = canonical_json({"proof": [base64.b64encode(h).decode() for h in
                                           merkle.prove_inclusion(5, SIZE, log.tree)], "seq": 5}) + b"\n"
    swapped = rezip(partial, entries_jsonl=log.entries[4].replace(b'"seq":4', b'"seq":5') + b"\n",
                    proofs_jsonl=fake_proof)  # fmt: skip
    failed(verify(swapped), TAMPERED, "^entry 5 is not in the log", seq=5)


# -- not a bundle ------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello", b"PK\x03\x04" + bytes(100), bytes(range(256)) * 10])
def test_not_a_zip(data: bytes) -> None:
    failed(verify(data), MALFORMED, "^not a readable ZIP file")


@pytest.mark.parametrize("member", ["bundle.json", "checkpoint", "entries.jsonl", "leaves.bin"])
def test_missing_member(bundle: bytes, member: str) -> None:
    failed(verify(rezip(bundle, drop=[member])), MALFORMED, f"(has no|needs) {re.escape(member)}")


def test_unexpected_members(log: Log, bundle: bytes) -> None:
    failed(verify(rezip(bundle, **{"notes.txt": b"hi"})), MALFORMED, "unexpected member 'notes.txt'")
    both = rezip(bundle, proofs_jsonl=b"")
    failed(verify(both), MALFORMED, "holds both leaves.bin and proofs.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        twice = zip_of([*members(bundle).items(), ("entries.jsonl", b"")])
    failed(verify(twice), MALFORMED, "holds entries.jsonl twice")


def test_unsupported_or_encrypted_member(bundle: bytes) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members(bundle).items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_BZIP2 if name == "entries.jsonl" else None)
    failed(verify(out.getvalue()), MALFORMED, "entries.jsonl is encrypted or compressed in an unsupported way")
    raw = bytearray(bundle)  # set the "encrypted" flag bit in every header
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        for found in re.finditer(re.escape(magic), bytes(raw)):
            raw[found.start() + offset] |= 1
    failed(verify(bytes(raw)), MALFORMED, "encrypted")


@pytest.mark.parametrize(("change", "match"), [
    (lambda h: h.update(extra=1), "unknown key 'extra'"),
    (lambda h: h.pop("filters"), "missing 'filters'"),
    (lambda h: h.update(version=2), "version is not 1"),
    (lambda h: h.update(full="yes"), "full is not true or false"),
    (lambda h: h.update(filters={"colour": "red"}), "a full bundle has no filters|unknown filter"),
    (lambda h: h.update(full=False, filters={"colour": "red"}), "unknown filter 'colour'"),
    (lambda h: h.update(full=False, filters={"start": "0"}), "filter 'start' is not a non-negative integer"),
    (lambda h: h.update(verifier_key="nope"), "verifier_key"),
    (lambda h: h.update(checkpoint_size=-1), "checkpoint_size out of range"),
    (lambda h: h.update(consistency={"old_size": 1}), "consistency is not null"),
])  # fmt: skip
def test_bad_header(bundle: bytes, change, match: str) -> None:
    header = json.loads(members(bundle)["bundle.json"])
    change(header)
    failed(verify(rezip(bundle, bundle_json=canonical_json(header))), MALFORMED, match)


@pytest.mark.parametrize(("data", "match"), [
    (b"not json", "not valid UTF-8 JSON"),
    (b'{ "version": 1 }', "not in canonical form"),
    (b"[]", "not a JSON object"),
    (b" " * (MAX_HEADER_SIZE + 1), f"larger than {MAX_HEADER_SIZE} bytes"),
])  # fmt: skip
def test_bad_header_bytes(bundle: bytes, data: bytes, match: str) -> None:
    failed(verify(rezip(bundle, bundle_json=data)), MALFORMED, match)


def test_huge_members(log: Log, bundle: bytes) -> None:
    small = log.full_bundle(2)
    failed(verify(rezip(small, entries_jsonl=b"\n" * (2 * (MAX_ENTRY_SIZE + 1) + 1))), MALFORMED,
           "entries.jsonl is larger than a log of 2 entries can be")  # fmt: skip
    failed(verify(rezip(bundle, checkpoint=b"x" * (note.MAX_NOTE_SIZE + 1))), MALFORMED,
           "checkpoint is larger than")  # fmt: skip


def test_bad_pinned_key(bundle: bytes) -> None:
    failed(verify(bundle, verifier_key="carebridge+00000000+AAAA"), MALFORMED, "pinned verifier key is malformed")


def test_bad_proof_lines(log: Log) -> None:
    partial = log.partial_bundle([2])
    for data, match in ((b"{}\n", "is not"), (b'{"proof":["AAAA"],"seq":2}\n', "not canonical base64 of 32"),
                        (b'{"seq":2, "proof":[]}\n', "canonical")):  # fmt: skip
        failed(verify(rezip(partial, proofs_jsonl=data)), MALFORMED, match)


# -- the writer ----------------------------------------------------------------------------


def test_writer_refuses_incomplete_or_mismatched_bundles(log: Log) -> None:
    header = BundleHeader(origin=ORIGIN, verifier_key=log.verifier_key, checkpoint_size=3, full=True)
    with (pytest.raises(AuditBundleError, match="2 entries for a checkpoint of size 3"),
          BundleWriter(io.BytesIO(), header=header, checkpoint=log.checkpoint(3)) as writer):  # fmt: skip
        writer.write_entries(b"".join(e + b"\n" for e in log.entries[:2]))
        writer.write_leaves(b"".join(merkle.leaf_hash(e) for e in log.entries[:3]))
    with pytest.raises(AuditBundleError, match="checkpoint size does not match"):
        BundleWriter(io.BytesIO(), header=header, checkpoint=log.checkpoint(4))
    with pytest.raises(AuditBundleError, match="no signature from a known key"):
        BundleWriter(io.BytesIO(), header=header, checkpoint=Log(3).checkpoint())
    with pytest.raises(AuditBundleError, match="a full bundle has no proofs.jsonl"):
        BundleWriter(io.BytesIO(), header=header, checkpoint=log.checkpoint(3)).write_proof(0, [])
    writer = BundleWriter(io.BytesIO(), header=header, checkpoint=log.checkpoint(3))
    writer.write_leaves(b"")
    with pytest.raises(AuditBundleError, match="out of order"):
        writer.write_entries(b"{}\n")


def test_header_round_trip(log: Log) -> None:
    header = BundleHeader(origin=ORIGIN, verifier_key=log.verifier_key, checkpoint_size=9, full=False,
                          filters={"actor": "u_1", "start": 2},
                          consistency=Consistency(old_size=4, proof=(bytes(32), b"\x01" * 32)))  # fmt: skip
    assert BundleHeader.parse(header.encode()) == header
    with pytest.raises(AuditBundleError, match="consistency proof from a larger tree"):
        BundleHeader(origin=ORIGIN, verifier_key=log.verifier_key, checkpoint_size=3, full=False,
                     consistency=Consistency(old_size=4, proof=()))  # fmt: skip


# -- the seq of an entry ----------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "seq"), [
    ({"action": "a", "seq": 5}, 5),
    ({"seq": 5}, 5),  # seq first: no comma before it, parsed the slow way
    ({"a": ',"seq":3,', "seq": 5}, 5),  # a value holding the pattern: its quotes are escaped
    ({'x"seq': 3, "seq": 5}, 5),  # a key ending in "seq": the quote before it is escaped
    ({"a": {"seq": 3}, "seq": 5}, 5),  # a nested object: a second "{", parsed the slow way
    ({"a": "{", "seq": 5}, 5),
    ({"a": "\\", "seq": 0}, 0),  # a string ending in a backslash
    ({"a": [1, ',"seq":9}'], "seq": 2**53 - 1}, 2**53 - 1),
])  # fmt: skip
def test_entry_seq(entry: dict, seq: int) -> None:
    assert entry_seq(canonical_json(entry)) == seq


@pytest.mark.parametrize("line", [
    b'{"x\\"seq":3}',  # only a key that ends in seq
    b'{"a":",\\"seq\\":3,"}',  # only a value that looks like one
    b'{"a":1,"seq":1,"seq":2}',  # duplicate keys
    b'{"a":1,"seq":5.0}', b'{"a":1,"seq":-1}', b'{"a":1,"seq":"5"}', b'{"a":1,"seq":true}',
    b'[1,{"a":1,"seq":5}]', b'{"a":{"b":1,"seq":5}}', b'{"a":1,"seq":' + b"9" * 5000 + b"}",
    b"", b"{", b"null", b"[" * 100_000,
])  # fmt: skip
def test_entry_without_a_top_level_seq(line: bytes) -> None:
    with pytest.raises(AuditBundleError):
        entry_seq(line)


def test_crafted_strings_cannot_fake_a_seq() -> None:
    """Every entry carries a value that spells another seq: the fast batch check must not be fooled."""
    log = Log(0)
    for seq in range(50):
        log.append(canonical_json({"a": f'z","seq":{seq + 1},"', f'k","seq":{seq + 2}': 0, "seq": seq,
                                   "t": ',"seq":0}'}))  # fmt: skip
    assert verify(log.full_bundle()).ok
    liar = Log(0)
    for seq in range(50):  # right seq only inside a string, wrong top-level seq at 20
        claimed = seq + 1 if seq == 20 else seq
        liar.append(canonical_json({"a": f'","seq":{seq},"', "seq": claimed}))
    failed(verify(liar.full_bundle()), TAMPERED, "entry 20 says it is seq 21", seq=20)


_json_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    [',"seq":1,', '"seq":', ',"seq":0}', "{", "}", "\\", '"', '\\",', "\n"])  # fmt: skip
_scalars = st.none() | st.integers(-(2**53) + 1, 2**53 - 1) | _json_text
_values = _scalars | st.lists(_scalars, max_size=3) | st.dictionaries(_json_text, _scalars, max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_json_text.filter(lambda k: k != "seq"), _values, max_size=6),
       st.integers(0, 2**53 - 1))  # fmt: skip
def test_property_entry_seq_reads_the_top_level_member(fields: dict, seq: int) -> None:
    assert entry_seq(canonical_json({**fields, "seq": seq})) == seq
    with pytest.raises(AuditBundleError):
        entry_seq(canonical_json(fields))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(_json_text.filter(lambda k: k != "seq"), _values, max_size=4),
                min_size=1, max_size=30), st.data())  # fmt: skip
def test_property_full_bundles_check_every_seq(entries: list[dict], data: st.DataObject) -> None:
    honest = Log(0)
    for seq, fields in enumerate(entries):
        honest.append(canonical_json({**fields, "seq": seq}))
    assert verify(honest.full_bundle()).ok
    wrong = data.draw(st.integers(0, len(entries) - 1))
    liar = Log(0)
    for seq, fields in enumerate(entries):
        liar.append(canonical_json({**fields, "seq": seq + (seq == wrong)}))
    failed(verify(liar.full_bundle()), TAMPERED, f"entry {wrong} says it is seq {wrong + 1}", seq=wrong)


# -- any flipped byte fails ------------------------------------------------------------------


FLIP_LOG = Log(25, seed=11)
FLIP_BUNDLES = {"full": FLIP_LOG.full_bundle(), "partial": FLIP_LOG.partial_bundle([0, 7, 8, 24], filters=EVERY),
                "range": FLIP_LOG.partial_bundle(range(3, 9), filters={"start": 3, "end": 9})}
FLIP_MEMBERS = {"full": ["bundle.json", "checkpoint", "entries.jsonl", "leaves.bin"],
                "partial": ["bundle.json", "checkpoint", "entries.jsonl", "proofs.jsonl"],
                "range": ["bundle.json", "checkpoint", "entries.jsonl", "proofs.jsonl"]}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FLIP_BUNDLES)), st.data())
def test_property_any_flipped_byte_fails(kind: str, data: st.DataObject) -> None:
    bundle = FLIP_BUNDLES[kind]
    name = data.draw(st.sampled_from(FLIP_MEMBERS[kind]))
    content = bytearray(members(bundle)[name])
    index = data.draw(st.integers(0, len(content) - 1))
    content[index] ^= data.draw(st.integers(1, 255))
    verdict = verify(rezip(bundle, **{name: bytes(content)}), previous=FLIP_LOG.checkpoint(10)
                     if kind == "full" else None)  # fmt: skip
    assert not verdict.ok, (name, index, verdict)
    assert verdict.kind in (MALFORMED, UNTRUSTED, TAMPERED, FORK, INCONCLUSIVE)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FLIP_BUNDLES)), st.data())
def test_property_damaged_archives_give_a_verdict(kind: str, data: st.DataObject) -> None:
    """Flips and cuts anywhere in the ZIP file: a verdict (ZIP metadata may not matter), never an exception."""
    raw = bytearray(FLIP_BUNDLES[kind])
    index = data.draw(st.integers(0, len(raw) - 1))
    if data.draw(st.booleans()):
        raw[index] ^= data.draw(st.integers(1, 255))
    else:
        del raw[index:]
    verdict = verify(bytes(raw))
    assert isinstance(verdict, Verdict)
    if not verdict.ok:
        assert verdict.kind in (MALFORMED, UNTRUSTED, TAMPERED, FORK, INCONCLUSIVE)
