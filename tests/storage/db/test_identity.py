"""Organisations, users, API tokens and referrals (storage/db/identity.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from carebridge.storage.db import identity
from carebridge.storage.db.store import Store, Tx
from carebridge.storage.errors import Conflict

from tests.storage.db.factories import START, make_world


async def _world(store: Store) -> dict[str, Any]:
    return await store.write(make_world)


async def test_orgs_and_users_are_found_and_unique(store: Store) -> None:
    world = await _world(store)
    clinic, spa, alice, bob = world["clinic"], world["spa"], world["alice"], world["bob"]

    def read(conn):
        return (identity.find_org(conn, "Spa"), identity.find_org(conn, "spa"),
                identity.find_user_by_email(conn, "alice@spa.test"),
                identity.find_user_by_email(conn, "nobody@spa.test"),
                identity.find_users(conn, [alice.id, bob.id, "usr_unknown"]),
                identity.find_users(conn, []),
                identity.users_in_org(conn, spa.id), identity.users_in_org(conn, "org_unknown"))

    found_spa, wrong_case, found_alice, nobody, some, none, spa_users, no_users = await store.read(read)

    assert found_spa == spa == identity.Org(spa.id, "Spa", "spa")
    assert wrong_case is None and nobody is None
    assert found_alice == alice == identity.User(alice.id, "alice@spa.test", spa.id, "recipient", "spa", False)
    assert some == {alice.id: alice, bob.id: bob}
    assert none == {}
    assert spa_users == [alice, bob]  # by e-mail
    assert no_users == []
    assert world["sender"].org_kind == "clinic"

    with pytest.raises(Conflict):
        await store.write(lambda tx: identity.create_org(tx.conn, id="org_new", name="Spa", kind="spa",
                                                         now=tx.now))
    with pytest.raises(Conflict):
        await store.write(lambda tx: identity.create_user(
            tx.conn, id="usr_new", email="alice@spa.test", org=clinic, role="uploader", now=tx.now))
    assert await store.read(lambda conn: identity.find_org(conn, "Spa")) == spa
    assert await store.read(lambda conn: identity.find_users(conn, ["usr_new"])) == {}


async def test_tokens_are_found_with_their_user_and_revoked_once(store: Store) -> None:
    world = await _world(store)
    alice = world["alice"]
    expires = START + timedelta(days=30)
    secret_hash = bytes(range(32))

    await store.write(lambda tx: identity.create_token(tx.conn, id="tok_1", user_id=alice.id,
                                                       secret_hash=secret_hash, now=tx.now,
                                                       expires_at=expires))
    fresh = await store.read(lambda conn: identity.find_token(conn, "tok_1"))
    revoked_at = START + timedelta(hours=1)
    first = await store.write(lambda tx: identity.revoke_token(tx.conn, "tok_1", revoked_at))
    again = await store.write(lambda tx: identity.revoke_token(tx.conn, "tok_1", revoked_at + timedelta(hours=1)))
    unknown = await store.write(lambda tx: identity.revoke_token(tx.conn, "tok_unknown", revoked_at))
    revoked = await store.read(lambda conn: identity.find_token(conn, "tok_1"))

    assert fresh == identity.TokenRecord("tok_1", secret_hash, expires, None, alice)
    assert type(fresh.secret_hash) is bytes
    assert (first, again, unknown) == (True, False, False)
    assert revoked.revoked_at == revoked_at  # the second revoke changed nothing
    assert await store.read(lambda conn: identity.find_token(conn, "tok_unknown")) is None


async def test_referrals_run_one_way_and_link_both(store: Store) -> None:
    world = await _world(store)
    clinic, spa = world["clinic"], world["spa"]

    def more(tx: Tx) -> tuple[identity.Org, identity.Org]:
        spa2 = identity.create_org(tx.conn, id="org_spa2", name="Spa 2", kind="spa", now=tx.now)
        clinic2 = identity.create_org(tx.conn, id="org_clinic2", name="Clinic 2", kind="clinic", now=tx.now)
        identity.add_referral(tx.conn, clinic=clinic, spa=spa2, now=tx.now)
        identity.add_referral(tx.conn, clinic=clinic2, spa=spa, now=tx.now)
        return spa2, clinic2

    spa2, clinic2 = await store.write(more)

    def read(conn):
        return (identity.has_referral(conn, clinic.id, spa.id), identity.has_referral(conn, spa.id, clinic.id),
                identity.has_referral(conn, clinic2.id, spa2.id),
                identity.linked_orgs(conn, clinic.id), identity.linked_orgs(conn, spa.id),
                identity.linked_orgs(conn, "org_unknown"),
                identity.referred_spas(conn, clinic.id), identity.referred_spas(conn, spa.id))

    assert await store.read(read) == (
        True, False, False,
        {spa.id, spa2.id}, {clinic.id, clinic2.id}, set(),
        {spa.id, spa2.id}, set())
    with pytest.raises(Conflict):
        await store.write(lambda tx: identity.add_referral(tx.conn, clinic=clinic, spa=spa, now=tx.now))
