"""Sender-side key transparency (gateway/client/transparency.py, used by
``transfer.send``): a sender encrypts only to keys that the log published,
proven by a C2SP tlog-proof under the log's key — so a gateway (or anyone
with its database) that swaps a recipient's key is caught before a byte is
encrypted to it.

The gateway is real (the server suite's fixtures); the attacks rewrite its
database directly, as someone with access to it would.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from carebridge.crypto import merkle, note
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.registration import log_object, sign_registration
from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions, TransferError
from carebridge.gateway.client.transparency import check_published, log_verifier
from carebridge.storage.db import ledger

from tests.gateway.server import conftest as server
from tests.gateway.server.conftest import (
    DB_BACKENDS,
    Person,
    World,
    matching,
    register_keys,
)

# The server suite's fixtures (a real gateway with the synthetic deployment).
backend = server.backend
gateway_factory = server.gateway_factory
world_factory = server.world_factory
world = server.world

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

PDF = b"%PDF-1.4\nTEST PATIENT synthetic summary\n"


async def send(world: World, tmp_path: Path, to: list[str], **options: Any) -> dict:
    path = tmp_path / f"test-summary-{secrets.token_hex(4)}.pdf"
    path.write_bytes(PDF)
    return await transfer.send(world.uploader.client, world.uploader.keys, path, to, SendOptions(**{"unsafe_skip_redaction_gate": True, **options}))


@contextmanager
def attacker_sql(world: World) -> Iterator[Any]:
    """``execute(sql, params)`` (``?`` placeholders) on the gateway's database, in one
    transaction, with the access log's append-only triggers off."""
    gw = world.gw
    if gw.backend[0] == "sqlite":
        conn = sqlite3.connect(gw.settings.data_dir / "carebridge.db", isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DROP TRIGGER IF EXISTS log_entries_no_update")
            yield conn.execute
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        with psycopg.connect(gw.pg_url) as pg:  # the superuser
            pg.execute("ALTER TABLE log_entries DISABLE TRIGGER ALL")
            yield lambda sql, params=(): pg.execute(sql.replace("?", "%s"), params)
            pg.execute("ALTER TABLE log_entries ENABLE TRIGGER ALL")


async def active_key(world: World, person: Person) -> dict:
    (user,) = await world.uploader.client.directory(email=person.email)
    return user["keys"]


async def uploads(world: World) -> list[dict]:
    return matching(await world.audit(), action="document.upload")


async def assert_refused(world: World, tmp_path: Path, who: Person, *why: str, **options: Any) -> None:
    """transfer.send to *who* fails with TransferError naming the recipient and *why*;
    nothing was uploaded."""
    with pytest.raises(TransferError) as refused:
        await send(world, tmp_path, [who.email], **options)
    message = str(refused.value)
    assert "refusing to encrypt" in message and who.email in message, message
    for words in why:
        assert words in message, message
    assert await uploads(world) == []


# -- the honest case ------------------------------------------------------------------------


async def test_send_succeeds_when_the_recipients_keys_are_in_the_log(world: World, tmp_path: Path) -> None:
    sent = await send(world, tmp_path, [world.recipient.email])
    assert sent["id"].startswith("doc_")
    # to a whole organisation: every recipient's key is checked
    sent2 = await send(world, tmp_path, ["org:Glow Test Spa"])
    assert len(await uploads(world)) == 2 and sent2["id"] != sent["id"]

    # what send checked, step by step: the directory's key is proven in a signed checkpoint
    verifier, origin = await log_verifier(world.uploader.client, None)
    (user,) = await world.uploader.client.directory(email=world.recipient.email)
    size = await check_published(world.uploader.client, user, verifier, origin)
    assert size > user["keys"]["log_seq"]
    entry = json.loads(base64.b64decode(user["keys"]["log_entry"]))
    assert (entry["action"], entry["outcome"], entry["actor"], entry["seq"]) == (
        "keys.register", "allow", world.recipient.user_id, user["keys"]["log_seq"])
    assert entry["object"] == log_object(base64.b64decode(user["keys"]["registration"]))
    # the same key pinned explicitly works too
    await send(world, tmp_path, [world.recipient.email], log_verifier=verifier.encode())

    # and the recipient reads the document
    out = tmp_path / "fetched.pdf"
    await transfer.fetch(world.recipient.client, world.recipient.keys, sent["id"], output=out, raw=False)
    assert out.read_bytes() == PDF


async def test_a_rotated_key_is_checked_against_its_own_log_entry(world: World, tmp_path: Path) -> None:
    new_keys = UserKeys.generate()
    assert (await register_keys(world.gw, world.recipient.token, world.recipient.user_id, new_keys)).status == 201
    world.recipient.keys = new_keys
    keys = await active_key(world, world.recipient)
    assert keys["age_recipient"] == new_keys.recipient
    await send(world, tmp_path, [world.recipient.email])


# -- a key the log never published ------------------------------------------------------------


async def test_refuses_a_key_swapped_in_the_database(world: World, tmp_path: Path) -> None:
    """The simplest swap: the recipient's active key row now holds the attacker's age key."""
    attacker = UserKeys.generate()
    with attacker_sql(world) as execute:
        execute("UPDATE user_keys SET age_recipient = ? WHERE user_id = ? AND status = 'active'",
                (attacker.recipient, world.recipient.user_id))
    assert (await active_key(world, world.recipient))["age_recipient"] == attacker.recipient  # served

    await assert_refused(world, tmp_path, world.recipient, "registration does not match")


async def test_refuses_a_swapped_key_with_its_own_signed_registration(world: World, tmp_path: Path) -> None:
    """The attacker also swaps in a registration statement signed by their own key for
    the recipient's user id: it verifies, but the log never published it."""
    attacker = UserKeys.generate()
    forged = sign_registration(user_id=world.recipient.user_id, age_recipient=attacker.recipient,
                               key=attacker.signing_key, now=world.clock.now)
    with attacker_sql(world) as execute:
        execute("UPDATE user_keys SET age_recipient = ?, verify_key = ?, registration = ?"
                " WHERE user_id = ? AND status = 'active'",
                (attacker.recipient, attacker.verify_key.encode(), forged, world.recipient.user_id))

    await assert_refused(world, tmp_path, world.recipient, "log entry does not publish this key")


async def test_refuses_a_swapped_key_whose_log_entry_was_rewritten(world: World, tmp_path: Path) -> None:
    """The attacker rewrites the registration's log entry too (triggers off), so the
    entry names the forged registration: the entry is no longer the one the log's
    tree holds, and no signed checkpoint includes it."""
    attacker = UserKeys.generate()
    forged = sign_registration(user_id=world.recipient.user_id, age_recipient=attacker.recipient,
                               key=attacker.signing_key, now=world.clock.now)
    seq = (await active_key(world, world.recipient))["log_seq"]
    with attacker_sql(world) as execute:
        (entry,) = execute("SELECT entry FROM log_entries WHERE seq = ?", (seq,)).fetchone()
        fields = json.loads(bytes(entry))
        fields["object"] = log_object(forged)
        rewritten = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        execute("UPDATE log_entries SET entry = ?, leaf_hash = ?, object = ? WHERE seq = ?",
                (rewritten, merkle.leaf_hash(rewritten), fields["object"], seq))
        execute("UPDATE user_keys SET age_recipient = ?, verify_key = ?, registration = ?"
                " WHERE user_id = ? AND status = 'active'",
                (attacker.recipient, attacker.verify_key.encode(), forged, world.recipient.user_id))
    served = await active_key(world, world.recipient)
    assert json.loads(base64.b64decode(served["log_entry"]))["object"] == log_object(forged)

    await assert_refused(world, tmp_path, world.recipient, "not proven to be in the log")


async def test_refuses_a_key_pointing_at_another_registrations_entry(world: World, tmp_path: Path) -> None:
    """The key row names a real, logged keys.register entry — of someone else."""
    attacker = UserKeys.generate()
    other_seq = (await active_key(world, world.recipient2))["log_seq"]
    with attacker_sql(world) as execute:
        execute("UPDATE user_keys SET age_recipient = ?, log_seq = ? WHERE user_id = ? AND status = 'active'",
                (attacker.recipient, other_seq, world.recipient.user_id))

    await assert_refused(world, tmp_path, world.recipient)


async def test_refuses_a_registration_whose_entry_is_an_older_registration(world: World,
                                                                           tmp_path: Path) -> None:
    """After a rotation, the new key row is pointed at the recipient's OLD (logged)
    keys.register entry: that entry publishes another statement."""
    old_seq = (await active_key(world, world.recipient))["log_seq"]
    new_keys = UserKeys.generate()
    assert (await register_keys(world.gw, world.recipient.token, world.recipient.user_id, new_keys)).status == 201
    with attacker_sql(world) as execute:
        execute("UPDATE user_keys SET log_seq = ? WHERE user_id = ? AND status = 'active'",
                (old_seq, world.recipient.user_id))

    await assert_refused(world, tmp_path, world.recipient, "log entry does not publish this key")


async def test_refuses_a_key_with_no_log_entry(world: World, tmp_path: Path) -> None:
    size = await world.gw.store.read(ledger.tree_size)
    with attacker_sql(world) as execute:
        execute("UPDATE user_keys SET log_seq = ? WHERE user_id = ? AND status = 'active'",
                (size + 1000, world.recipient.user_id))
    assert (await active_key(world, world.recipient))["log_entry"] is None

    await assert_refused(world, tmp_path, world.recipient, "malformed")


async def test_refuses_when_the_gateways_log_key_is_not_the_pinned_one(world: World, tmp_path: Path) -> None:
    """A sender who pinned the log's key (SendOptions.log_verifier, CAREBRIDGE_LOG_VERIFIER)
    refuses a gateway that signs with another key: its proofs prove nothing."""
    origin = world.gw.settings.log_origin
    pinned = note.Signer.generate(origin).verifier.encode()
    with pytest.raises(TransferError) as refused:
        await send(world, tmp_path, [world.recipient.email], log_verifier=pinned)
    assert "pinned" in str(refused.value)
    assert await uploads(world) == []
