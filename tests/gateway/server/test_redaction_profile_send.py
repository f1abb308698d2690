"""A clinic's redaction profile, end to end: set with `carebridge redaction-profile set`, fetched and
verified by `send`, applied in the gate, named in the signed manifest and the log; `inspect` unchanged."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from carebridge.crypto import keyfile
from carebridge.crypto.canonical import parse_canonical_json
from carebridge.gateway import cli as entry
from carebridge.gateway.client import cli, transfer
from carebridge.gateway.client._terminal import CLIError
from carebridge.gateway.client.transfer import SendOptions, TransferError
from carebridge.storage.db.schema import redaction_profiles

from ..client.redaction import pdfgen
from .conftest import DB_BACKENDS, Person, World, matching

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

PASSPHRASE = "synthetic test passphrase for the profile"
NAMED_CLIENT = ["Treatment summary: chemical peel, Fitzpatrick III.", "Client name: Testa Exampledottir"]


def profile_file(tmp_path: Path, version: int, rules: dict[str, str]) -> Path:
    path = tmp_path / f"profile-{version}.json"
    path.write_text(json.dumps({"format": "carebridge-redaction-profile/1", "id": "sunrise-test-profile",
                                "version": version, "rules": rules}))
    return path


def run_profile_verb(world: World, person: Person, tmp_path: Path, *argv: str) -> tuple[int, str]:
    """`carebridge redaction-profile ARGV --json` as *person* (in a thread: the gateway runs in this loop)."""
    identity = tmp_path / f"{person.label}.key"
    identity.write_bytes(keyfile.seal(person.keys, PASSPHRASE, created=datetime.now(UTC), log_n=10))
    env = {"CAREBRIDGE_URL": world.gw.url, "CAREBRIDGE_TOKEN": person.token,
           "CAREBRIDGE_IDENTITY": str(identity), "CAREBRIDGE_PASSPHRASE": PASSPHRASE}
    parser = argparse.ArgumentParser()
    cli.register_profile(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(["redaction-profile", *argv, "--json"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = args.run(args, env)
    return code, out.getvalue()


def summary(tmp_path: Path) -> Path:
    path = tmp_path / f"test-summary-{secrets.token_hex(4)}.pdf"
    path.write_bytes(pdfgen.summary(NAMED_CLIENT))
    return path


async def send(world: World, path: Path) -> dict:
    return await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                               SendOptions())


async def test_a_profile_lets_the_name_through_and_is_named_in_manifest_and_log(world: World,
                                                                                 tmp_path: Path) -> None:
    path = summary(tmp_path)
    with pytest.raises(TransferError, match="person-name"):  # no profile: every rule blocks
        await send(world, path)
    code, out = await asyncio.to_thread(run_profile_verb, world, world.uploader, tmp_path, "show")
    assert (code, json.loads(out)) == (0, {"profile": None})

    code, out = await asyncio.to_thread(run_profile_verb, world, world.uploader, tmp_path, "set",
                                        str(profile_file(tmp_path, 1, {"person-name": "off"})))
    assert code == 0 and json.loads(out)["profile"]["rules"] == {"person-name": "off"}
    sent = await send(world, path)  # no --allow, no reason
    assert sent["overrides"] == [] and sent["redaction_profile"] == {"id": "sunrise-test-profile", "version": 1}

    info = await world.gw.request("GET", f"/api/v1/documents/{sent['id']}", token=world.recipient.token)
    manifest = parse_canonical_json(base64.b64decode(info.json()["manifest"]))["manifest"]
    assert manifest["redaction_profile"] == {"id": "sunrise-test-profile", "version": 1}
    entries = await world.audit()
    assert matching(entries, action="redaction.profile.set", outcome="allow", object="sunrise-test-profile@1")
    assert [e["reason"] for e in matching(entries, action="redaction.profile", object=sent["id"])] == [
        "sunrise-test-profile@1"]
    assert "Exampledottir" not in json.dumps(entries)
    fetched = await transfer.fetch(world.recipient.client, world.recipient.keys, sent["id"],
                                   output=tmp_path / "fetched.pdf", raw=False)
    assert fetched.size > 0

    # a newer version that blocks names again: the next send is blocked, and `show` says so
    await asyncio.to_thread(run_profile_verb, world, world.uploader, tmp_path, "set",
                            str(profile_file(tmp_path, 2, {"person-name": "block", "zip-code": "off"})))
    with pytest.raises(TransferError, match="person-name"):
        await send(world, path)
    code, out = await asyncio.to_thread(run_profile_verb, world, world.uploader, tmp_path, "show")
    assert json.loads(out)["profile"]["version"] == 2

    # `inspect` knows nothing of the gateway: the name is still a finding there
    assert await asyncio.to_thread(entry.main, ["inspect", str(path), "--json"]) == 1


async def test_send_refuses_a_profile_whose_signature_does_not_verify(world: World, tmp_path: Path) -> None:
    await asyncio.to_thread(run_profile_verb, world, world.uploader, tmp_path, "set",
                            str(profile_file(tmp_path, 1, {"person-name": "off"})))
    org_id = (await world.uploader.client.me())["org_id"]

    def tamper(tx) -> None:  # someone with the database (not the clinic) relaxes the stored profile
        stored = tx.profiles.current(org_id).document
        forged = stored.replace(b'"person-name":"off"', b'"person-name":"off","ssn":"off"')
        assert forged != stored
        tx._conn.execute(update(redaction_profiles).values(document=forged))

    await world.gw.store.write(tamper)
    with pytest.raises(TransferError, match="cannot be trusted"):
        await send(world, summary(tmp_path))
    assert (await world.uploader.client.listing("outbox"))["documents"] == []


async def test_set_refuses_a_bad_file_and_a_recipient(world: World, tmp_path: Path) -> None:
    weakened = profile_file(tmp_path, 1, {"fake-redaction": "off"})
    with pytest.raises(CLIError, match="always block"):
        await asyncio.to_thread(run_profile_verb, world, world.uploader, tmp_path, "set", str(weakened))
    good = profile_file(tmp_path, 1, {"person-name": "warn"})
    with pytest.raises(CLIError, match="403"):
        await asyncio.to_thread(run_profile_verb, world, world.recipient, tmp_path, "set", str(good))
    code, out = await asyncio.to_thread(run_profile_verb, world, world.uploader, tmp_path, "show")
    assert json.loads(out) == {"profile": None}
