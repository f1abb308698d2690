"""Sign-in rows (storage/db/accounts.py): credentials, TOTP steps, enrollment links, sessions."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from carebridge.storage.db.accounts import TOUCH_EVERY
from carebridge.storage.db.store import Store, Tx
from carebridge.storage.errors import Conflict
import pytest

from tests.storage.db.factories import START, make_world

HOUR = timedelta(hours=1)


def _hash(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


async def test_credentials_replace_and_totp_steps_are_used_once(store: Store) -> None:
    alice = (await store.write(make_world))["alice"]

    def enroll(tx: Tx) -> None:
        tx.accounts.set_credentials(user_id=alice.id, password_hash="$argon2id$first", totp_secret=None,
                                    totp_step=None, now=tx.now)
        tx.accounts.set_credentials(user_id=alice.id, password_hash="$argon2id$second", totp_secret="JBSWY3DP",
                                    totp_step=100, now=tx.now)

    await store.write(enroll)
    stored = await store.query(lambda db: db.accounts.find_credentials(alice.id))
    assert (stored.password_hash, stored.totp_secret, stored.totp_last_step) == ("$argon2id$second", "JBSWY3DP", 100)
    assert "JBSWY3DP" not in repr(stored) and "argon2" not in repr(stored)
    steps = [await store.write(lambda tx, s=s: tx.accounts.use_totp_step(alice.id, s)) for s in (100, 99, 101, 101)]
    assert steps == [False, False, True, False]
    assert await store.query(lambda db: db.accounts.find_credentials("usr_nobody")) is None


async def test_enrollments_offer_one_secret_and_finish_together(store: Store) -> None:
    world = await store.write(make_world)
    bob = world["bob"]

    def issue(tx: Tx) -> None:
        for n in (1, 2):
            tx.accounts.create_enrollment(id=f"enr_{n}", user_id=bob.id, token_hash=_hash(f"t{n}"), now=tx.now,
                                          expires_at=tx.now + 72 * HOUR)

    await store.write(issue)
    offered = [await store.write(lambda tx, s=s: tx.accounts.offer_totp("enr_1", s)) for s in ("FIRST", "SECOND")]
    assert offered == ["FIRST", "FIRST"]
    found = await store.query(lambda db: db.accounts.find_enrollment(_hash("t1")))
    assert (found.id, found.user, found.totp_secret, found.used_at, found.recipient_totp) == (
        "enr_1", bob, "FIRST", None, True)
    assert await store.write(lambda tx: tx.accounts.finish_enrollments(bob.id, tx.now)) == 2
    second = await store.query(lambda db: db.accounts.find_enrollment(_hash("t2")))
    assert second.used_at is not None
    with pytest.raises(Conflict):  # a token hash names one enrollment
        await store.write(lambda tx: tx.accounts.create_enrollment(
            id="enr_3", user_id=bob.id, token_hash=_hash("t1"), now=tx.now, expires_at=tx.now + HOUR))
    await store.write(lambda tx: tx.accounts.set_recipient_totp(world["spa"].id, False))
    assert await store.query(lambda db: db.accounts.recipient_totp(world["spa"].id)) is False


async def test_sessions_touch_idle_expire_and_end(store: Store) -> None:
    alice = (await store.write(make_world))["alice"]
    idle = timedelta(minutes=30)

    def open_two(tx: Tx) -> None:
        for n in (1, 2):
            tx.accounts.create_session(id=f"ses_{n}", user_id=alice.id, secret_hash=_hash(f"s{n}"), now=START,
                                       expires_at=START + 12 * HOUR, user_agent="Test Browser")

    await store.write(open_two)
    at = START + TOUCH_EVERY / 2
    touched = await store.write(lambda tx: tx.accounts.touch_session(_hash("s1"), at, at - idle))
    assert touched is False  # seen just now: no write
    at = START + 20 * timedelta(minutes=1)
    assert await store.write(lambda tx: tx.accounts.touch_session(_hash("s1"), at, at - idle))
    later = START + 40 * timedelta(minutes=1)  # ses_2 idle since START, ses_1 seen 20 minutes ago
    live = await store.query(lambda db: db.accounts.live_sessions(alice.id, later, later - idle))
    assert [s.id for s in live] == ["ses_1"]
    assert not await store.write(lambda tx: tx.accounts.touch_session(_hash("s2"), later, later - idle))
    assert await store.write(lambda tx: tx.accounts.end_session("ses_1", alice.id, later, "signed_out"))
    assert not await store.write(lambda tx: tx.accounts.end_session("ses_1", alice.id, later, "revoked"))
    ended = await store.query(lambda db: db.accounts.find_session(_hash("s1")))
    assert (ended.end_reason, ended.ended_at, ended.last_seen_at, ended.user_agent) == (
        "signed_out", later, at, "Test Browser")
    assert not await store.write(lambda tx: tx.accounts.end_session("ses_2", "usr_other", later, "revoked"))
    past = START + 13 * HOUR
    assert await store.query(lambda db: db.accounts.live_sessions(alice.id, past, past - idle)) == []
