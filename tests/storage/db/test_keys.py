"""The key directory (storage/db/keys.py): one active key set per user, the
rest kept as history (rotated or revoked, with the time they were retired).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from carebridge.storage.db import keys
from carebridge.storage.db.schema import user_keys
from carebridge.storage.db.store import Store, Tx
from carebridge.storage.errors import Conflict
from sqlalchemy import insert

from tests.storage.db.factories import make_world


def _register(user_id: str, key_id: str) -> Callable[[Tx], tuple[bool, int]]:
    """A unit that logs and registers key set *key_id*; returns (replaced, log seq)."""

    def unit(tx: Tx) -> tuple[bool, int]:
        seq = tx.log(action="keys.register", outcome="allow", reason="ok", actor=user_id, object=key_id)
        replaced = keys.register(tx.conn, id=key_id, user_id=user_id, age_recipient=f"age1{key_id}",
                                 verify_key=f"vk-{key_id}", registration=b"signed " + key_id.encode(),
                                 log_seq=seq, now=tx.now)
        return replaced, seq

    return unit


async def test_register_rotate_revoke_and_history(store: Store) -> None:
    world = await store.write(make_world)
    alice, bob = world["alice"].id, world["bob"].id

    replaced1, seq1 = await store.write(_register(alice, "key_1"))
    after_first = await store.read(lambda conn: keys.active(conn, [alice, bob]))
    replaced2, seq2 = await store.write(_register(alice, "key_2"))
    await store.write(_register(bob, "key_bob"))
    history = await store.read(lambda conn: keys.history(conn, alice))
    active = await store.read(lambda conn: keys.active(conn, [alice, bob, "usr_unknown"]))

    assert (replaced1, replaced2) == (False, True)
    assert list(after_first) == [alice]
    first, second = history
    assert (first.id, first.status, first.log_seq, first.age_recipient) == ("key_1", "rotated", seq1, "age1key_1")
    assert (second.id, second.status, second.log_seq, second.retired_at) == ("key_2", "active", seq2, None)
    assert first.retired_at == second.created_at > first.created_at  # retired by the second's unit
    assert {user: k.id for user, k in active.items()} == {alice: "key_2", bob: "key_bob"}
    assert active[alice] == second

    # by_verify_key finds retired key sets too, only the user's own.
    def lookups(conn):
        return (keys.by_verify_key(conn, alice, "vk-key_1"), keys.by_verify_key(conn, alice, "vk-key_2"),
                keys.by_verify_key(conn, bob, "vk-key_1"), keys.by_verify_key(conn, alice, "vk-unknown"))

    assert await store.read(lookups) == (first, second, None, None)

    revoked = await store.write(lambda tx: (keys.revoke(tx.conn, alice, tx.now), tx.now))
    revoked_again = await store.write(lambda tx: keys.revoke(tx.conn, alice, tx.now))
    history = await store.read(lambda conn: keys.history(conn, alice))
    active = await store.read(lambda conn: keys.active(conn, [alice, bob]))

    assert revoked[0] is True and revoked_again is False
    assert [(k.id, k.status) for k in history] == [("key_1", "rotated"), ("key_2", "revoked")]
    assert history[1].retired_at == revoked[1]
    assert history[0] == first  # an old retirement is not rewritten
    assert list(active) == [bob]

    replaced3, _ = await store.write(_register(alice, "key_3"))  # nothing active to replace
    assert replaced3 is False
    assert (await store.read(lambda conn: keys.active(conn, [alice])))[alice].id == "key_3"


async def test_database_allows_one_active_key_set_per_user(store: Store) -> None:
    world = await store.write(make_world)
    alice = world["alice"].id
    await store.write(_register(alice, "key_1"))
    await store.write(_register(alice, "key_2"))  # key_1 is now rotated: no clash

    def second_active(tx: Tx) -> None:  # around keys.register, which would retire key_2
        tx.conn.execute(insert(user_keys).values(
            id="key_x", user_id=alice, age_recipient="age1x", verify_key="vk-x", status="active",
            registration=b"x", log_seq=0, created_at=tx.now))

    with pytest.raises(Conflict):
        await store.write(second_active)

    history = await store.read(lambda conn: keys.history(conn, alice))
    assert [(k.id, k.status) for k in history] == [("key_1", "rotated"), ("key_2", "active")]
