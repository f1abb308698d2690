"""The owner's half of key transparency: ``carebridge keys audit`` (gateway/client/keyaudit.py),
and the sender's refusal of a rotated-out key (transparency.check_latest).

The CLI runs as a person runs it (``carebridge.gateway.cli.main`` with only
``CAREBRIDGE_*`` settings, a sealed key file and the pinned log key) against
a real gateway (the server suite's fixtures). The malicious operator writes
through the gateway's own store, so what it registers IS in the log, proven
like any honest registration; only the owner can tell it is not theirs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from carebridge.crypto import keyfile
from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.registration import log_object, sign_registration
from carebridge.gateway.cli import main
from carebridge.gateway.client import keyaudit, transfer
from carebridge.gateway.client.transfer import SendOptions, TransferError
from carebridge.gateway.server.context import CHECKPOINTER
from carebridge.gateway.server.tokens import new_id
from carebridge.gateway.server.usecases import keys as keys_uc

from tests.gateway.client.test_transparency import attacker_sql
from tests.gateway.server import conftest as server
from tests.gateway.server.conftest import DB_BACKENDS, Person, World, matching, register_keys

backend = server.backend
gateway_factory = server.gateway_factory
world_factory = server.world_factory
world = server.world

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

PASSPHRASE = "made-up passphrase for a test key file"
PDF = b"%PDF-1.4\nTEST PATIENT synthetic summary\n"


class Cli:
    """``carebridge …`` as *person*, with their key file and the pinned log key, in a thread."""

    def __init__(self, world: World, person: Person, folder: Path, monkeypatch: pytest.MonkeyPatch,
                 capfd: pytest.CaptureFixture[str]) -> None:
        self.world, self.person, self.capfd, self.monkeypatch = world, person, capfd, monkeypatch
        folder.mkdir(exist_ok=True)
        self.key_file = folder / f"{person.label}.key"
        self.use_keys(person.keys)

    def use_keys(self, keys: UserKeys) -> None:
        self.key_file.write_bytes(keyfile.seal(keys, PASSPHRASE, created=datetime.now(UTC), log_n=10))

    @property
    def state_file(self) -> Path:
        return Path(str(self.key_file) + keyaudit.STATE_SUFFIX)

    async def run(self, *argv: str, **extra_env: str) -> tuple[int, str, str]:
        pinned = (await self.person.client.audit_verifier())["verifier_key"]
        for name in [n for n in os.environ if n.startswith("CAREBRIDGE_")]:
            self.monkeypatch.delenv(name)
        for name, value in {"URL": self.world.gw.url, "TOKEN": self.person.token, "IDENTITY": str(self.key_file),
                            "PASSPHRASE": PASSPHRASE, "LOG_VERIFIER": pinned, **extra_env}.items():
            self.monkeypatch.setenv(f"CAREBRIDGE_{name}", value)
        self.capfd.readouterr()
        code = await asyncio.to_thread(main, list(argv))
        out, err = self.capfd.readouterr()
        return code, out, err

    async def audit(self, *flags: str) -> tuple[int, dict, list[str]]:
        """``keys audit --json``: exit code, the report, the stderr lines."""
        code, out, err = await self.run("keys", "audit", "--json", *flags)
        return code, json.loads(out) if out.strip() else {}, err.splitlines()


@pytest.fixture
def cli(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]):
    return lambda person: Cli(world, person, tmp_path / "keys", monkeypatch, capfd)


async def rogue_registration(world: World, person: Person) -> tuple[int, UserKeys]:
    """The operator registers a key of its own for *person*, through the store: logged, checkpointed,
    and the key the directory now serves for them. Returns its log seq and the rogue keys."""
    rogue = UserKeys.generate()
    body = sign_registration(user_id=person.user_id, age_recipient=rogue.recipient, key=rogue.signing_key,
                             now=world.clock.now)

    def unit(tx) -> int:
        user = tx.identity.find_users([person.user_id])[person.user_id]
        seq = tx.log(action="keys.register", outcome="allow", reason="ok", actor=user.id, org=user.org_id,
                     object=log_object(body), request_id=None, client=None)
        tx.keys.register(id=new_id("key"), user_id=user.id, age_recipient=rogue.recipient,
                         verify_key=rogue.verify_key.encode(), registration=body, log_seq=seq, now=tx.now)
        return seq

    seq = await world.gw.store.write(unit)
    await world.gw.app[CHECKPOINTER].checkpoint()
    return seq, rogue


def hide_from_listing(monkeypatch: pytest.MonkeyPatch, seq: int) -> None:
    """The gateway leaves the registration at *seq* out of every key listing (``/users/{id}/keys``)."""
    honest = keys_uc.key_history

    async def dishonest(svc, caller, user_id):
        history, entries = await honest(svc, caller, user_id)
        return [k for k in history if k.log_seq != seq], entries

    monkeypatch.setattr(keys_uc, "key_history", dishonest)


def alarm_line(seq: int) -> str:
    return f"carebridge: ALARM: a key registration you did not make: log seq {seq} ("


def assert_names(line: str, seq: int, rogue: UserKeys) -> None:
    assert line.startswith(alarm_line(seq)), line
    assert f"age key {fingerprint(rogue.recipient)}" in line and \
        f"signing key {fingerprint(rogue.verify_key)}" in line, line


# -- a clean user -----------------------------------------------------------------------------------


async def test_a_clean_users_audit_passes_and_the_next_run_reads_only_what_is_new(world: World, cli) -> None:
    me = cli(world.recipient)
    code, report, err = await me.audit()
    assert code == 0, err
    (registration,) = report["registrations"]
    assert registration["age_recipient"] == world.recipient.keys.recipient
    assert report["unexpected"] == [] and report["previous_size"] == 0 and report["proofs_checked"] == 1
    first_size = report["checkpoint_size"]
    assert json.loads(me.state_file.read_text())["logs"]  # remembered, readable only by its owner
    assert me.state_file.stat().st_mode & 0o077 == 0

    # Nothing new: no registration is proven again; the checkpoint extends the one audited.
    code, report, err = await me.audit()
    assert code == 0, err
    assert report["registrations"] == [] and report["proofs_checked"] == 0
    assert report["previous_size"] == first_size

    # A rotation through the CLI: recorded as mine first, then proven as new by the next audit.
    rotated = UserKeys.generate()
    me.use_keys(rotated)
    code, out, err = await me.run("keys", "register")
    assert code == 0 and "registered:" in out, err
    code, report, err = await me.audit()
    assert code == 0, err
    assert [r["age_recipient"] for r in report["registrations"]] == [rotated.recipient]
    assert report["proofs_checked"] == 1 and report["unexpected"] == []
    code, out, _ = await me.run("keys", "audit")
    assert code == 0 and out.rstrip().endswith("all yours"), out


async def test_a_registration_made_elsewhere_alarms_until_its_owner_accepts_it(world: World, cli) -> None:
    """A first audit on a new machine, after a rotation made elsewhere: the earlier key is in neither
    the key file nor the record, so it alarms; ``--accept SEQ`` remembers it as the owner's."""
    earlier = (await world.recipient.client.me())["keys"]["log_seq"]
    rotated = UserKeys.generate()
    assert (await register_keys(world.gw, world.recipient.token, world.recipient.user_id, rotated)).status == 201
    me = cli(world.recipient)
    me.use_keys(rotated)
    code, report, err = await me.audit()
    assert code == 1 and [u["seq"] for u in report["unexpected"]] == [earlier]
    assert_names(err[0], earlier, world.recipient.keys)
    code, report, err = await me.audit("--accept", str(earlier))
    assert code == 0 and report["unexpected"] == [], err
    code, report, err = await me.audit()
    assert code == 0 and report["proofs_checked"] == 0, err


async def test_the_scan_reads_only_the_entries_added_since_the_last_scan(world: World, cli) -> None:
    """An auditor (who may read entries) scans: the first run reads the whole log, the next only
    the entries added since, each time proven to be exactly the signed checkpoint's."""
    me = cli(world.auditor)
    code, report, err = await me.audit("--scan")
    assert code == 0, err
    assert report["scanned"] and report["entries_read"] == report["checkpoint_size"] > 0
    first = report["checkpoint_size"]
    # new entries: someone else's registration (and a checkpoint signed for it)
    assert (await register_keys(world.gw, world.recipient2.token, world.recipient2.user_id,
                                UserKeys.generate())).status == 201
    code, report, err = await me.audit("--scan")
    assert code == 0, err
    assert report["previous_size"] == first
    assert 0 < report["entries_read"] == report["checkpoint_size"] - first < first


# -- what the operator registers for someone ---------------------------------------------------------


async def test_a_key_the_server_registered_for_a_user_raises_the_alarm(world: World, cli) -> None:
    victim, bystander = cli(world.recipient), cli(world.recipient2)
    assert (await victim.audit())[0] == 0 and (await bystander.audit())[0] == 0
    seq, rogue = await rogue_registration(world, world.recipient)
    # What senders see verifies: the rogue key is logged and proven. Only its owner can tell.
    (served,) = await world.uploader.client.directory(email=world.recipient.email)
    assert served["keys"]["log_seq"] == seq and served["keys"]["age_recipient"] == rogue.recipient

    code, report, err = await victim.audit()
    assert code == 1
    (line,) = err
    assert_names(line, seq, rogue)
    assert [u["seq"] for u in report["unexpected"]] == [seq]
    entry = matching(await world.audit(), seq=seq)[0]
    assert entry["time"] in line and entry["action"] == "keys.register"
    # The alarm stays until it is dealt with: the state did not move past it.
    code, _, err = await victim.audit()
    assert code == 1 and len(err) == 1 and err[0].startswith(alarm_line(seq))
    # The text form too: one ALARM line per registration, exit 1.
    code, out, err = await victim.run("keys", "audit")
    assert code == 1 and out.rstrip().endswith("ALARM") and len(err.splitlines()) == 1

    # Someone else's audit is untouched by it.
    code, report, err = await bystander.audit()
    assert code == 0 and report["unexpected"] == [], err


async def test_the_alarm_comes_after_any_verb_when_the_profile_opts_in(world: World, cli) -> None:
    victim = cli(world.recipient)
    code, out, err = await victim.run("inbox", KEYS_AUDIT="auto")
    assert code == 0 and "waits for a first `carebridge keys audit`" in err, err
    assert (await victim.audit())[0] == 0  # the key file's keys are now remembered as the owner's
    code, out, err = await victim.run("inbox", KEYS_AUDIT="auto")
    assert code == 0 and err == "", err
    seq, rogue = await rogue_registration(world, world.recipient)
    code, out, err = await victim.run("inbox")  # not opted in: nothing runs
    assert code == 0 and err == "", err
    code, out, err = await victim.run("inbox", KEYS_AUDIT="auto")
    assert code == 1 and "inbox is empty" in out
    # Without the passphrase (not asked for after another verb): the keys recorded by `keys register`
    # or by an earlier audit count as mine; the rogue one does not.
    (line,) = err.splitlines()
    assert_names(line, seq, rogue)


async def test_a_registration_hidden_from_the_listing_but_served_to_senders_is_caught(
        world: World, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway leaves the rogue registration out of the key listing, but serves the rogue key as
    the user's directory key (what senders get): the owner's audit compares the two."""
    victim = cli(world.recipient)
    assert (await victim.audit())[0] == 0
    seq, rogue = await rogue_registration(world, world.recipient)
    hide_from_listing(monkeypatch, seq)
    assert seq not in {k["log_seq"] for k in await world.recipient.client.key_history(world.recipient.user_id)}

    code, report, err = await victim.audit()
    assert code == 1
    assert any(f"log seq {seq}: the directory serves a key for you that your key listing leaves out" in line
               for line in err), err
    assert sum(line.startswith(alarm_line(seq)) for line in err) == 1, err


async def test_a_registration_hidden_from_every_view_of_its_owner_is_caught_by_the_scan(
        world: World, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A split view: the rogue registration is left out of the owner's listing and the owner's own
    directory entry shows their real key. Only reading the log's entries finds it: ``--scan``
    (auditors) hashes every new entry into the signed checkpoint's root, so the gateway cannot
    leave the entry out of the stream either."""
    owner = world.auditor
    me = cli(owner)
    assert (await me.audit("--scan"))[0] == 0
    seq, _ = await rogue_registration(world, owner)
    hide_from_listing(monkeypatch, seq)
    with_real_key = keys_uc.me

    async def split_view(svc, caller):
        listed = await with_real_key(svc, caller)
        user, key = listed.users[0]
        if key is not None and key.log_seq == seq:  # show the owner their previous (real) key
            history = [k for k in await svc.store.query(lambda db: db.keys.history(user.id)) if k.log_seq != seq]
            key = history[-1]
            listed = keys_uc.Listed([(user, key)], await svc.store.query(
                lambda db: db.ledger.entries_by_seq([key.log_seq])))
        return listed

    monkeypatch.setattr(keys_uc, "me", split_view)

    code, report, err = await me.audit()  # the listing alone sees nothing wrong
    assert code == 0, err
    code, report, err = await me.audit("--scan")
    assert code == 1
    assert any(f"log seq {seq} is a key registration of yours that the gateway's key listing leaves out"
               in line for line in err), err


async def test_the_scan_is_for_auditors_and_says_so(world: World, cli) -> None:
    code, _, err = await cli(world.recipient).audit("--scan")
    assert code == 1 and len(err) == 1 and "only auditors may" in err[0], err


async def test_an_audit_needs_the_pinned_log_key(world: World, cli) -> None:
    code, _, err = await cli(world.recipient).run("keys", "audit", LOG_VERIFIER="")
    assert code == 1 and "pinned" in err and len(err.splitlines()) == 1, err


# -- senders accept only the latest registration ------------------------------------------------------


async def send(world: World, tmp_path: Path, to: list[str]) -> dict:
    path = tmp_path / f"test-summary-{secrets.token_hex(4)}.pdf"
    path.write_bytes(PDF)
    return await transfer.send(world.uploader.client, world.uploader.keys, path, to,
                               SendOptions(unsafe_skip_redaction_gate=True))


async def test_a_sender_refuses_a_rotated_out_key(world: World, tmp_path: Path, cli) -> None:
    """The recipient rotated; the gateway serves their old key again (logged once, so it proves in the
    log): the sender sees the later registration and refuses, in one line, through the CLI too."""
    old = (await world.uploader.client.directory(email=world.recipient.email))[0]["keys"]
    assert (await register_keys(world.gw, world.recipient.token, world.recipient.user_id,
                                UserKeys.generate())).status == 201
    new_seq = (await world.uploader.client.directory(email=world.recipient.email))[0]["keys"]["log_seq"]

    with attacker_sql(world) as execute:  # the old row active again, the new one retired
        execute("UPDATE user_keys SET status = 'rotated' WHERE user_id = ?", (world.recipient.user_id,))
        execute("UPDATE user_keys SET status = 'active' WHERE id = ?", (old["id"],))
    assert (await world.uploader.client.directory(email=world.recipient.email))[0]["keys"]["id"] == old["id"]

    with pytest.raises(TransferError) as refused:
        await send(world, tmp_path, [world.recipient.email])
    message = str(refused.value)
    assert f"was rotated out by a later registration (log seq {new_seq})" in message, message
    assert world.recipient.email in message and f"log seq {old['log_seq']}" in message

    summary = tmp_path / "follow-up.txt"
    summary.write_text("A made-up follow-up plan: moisturise twice a day.\n")
    code, _, err = await cli(world.uploader).run("send", str(summary), "--to", world.recipient.email,
                                                 "--allow-text")
    assert code == 1 and len(err.splitlines()) == 1 and "rotated out" in err, err
    assert matching(await world.audit(), action="document.upload") == []


# -- the audit's own record ---------------------------------------------------------------------------


async def test_a_log_that_does_not_extend_the_one_audited_raises_the_alarm(world: World, cli) -> None:
    """The state remembers the checkpoint audited; a log whose history differs from it (here: the
    remembered root is another one, as after a rewrite or a fork) fails the consistency proof."""
    me = cli(world.recipient)
    assert (await me.audit())[0] == 0
    await register_keys(world.gw, world.recipient2.token, world.recipient2.user_id, UserKeys.generate())
    data = json.loads(me.state_file.read_text())
    (state,) = data["logs"].values()
    state["root"] = base64.b64encode(bytes(32)).decode()
    me.state_file.write_text(json.dumps(data))
    code, _, err = await me.audit()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("carebridge: error: ALARM: the log of size ") and "does not extend" in err[0], err


async def test_a_damaged_state_file_is_one_clear_error(world: World, cli) -> None:
    me = cli(world.recipient)
    me.state_file.write_text("not json")
    code, _, err = await me.audit()
    assert code == 1 and err == [f"carebridge: error: {me.state_file}: not a keys audit state file"
                                 " (move it away to start over)"], err
