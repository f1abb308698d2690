"""Enrollment links (issue 13.1): one-time, expiring, printed by the admin verbs and mailed over SMTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from carebridge.gateway.cli import main

from .conftest import DB_BACKENDS, SPA, World, matching
from .signin_helpers import CSRF, PASSWORD, code_now, enroll, enrollment_token, sign_in, sign_in_reply
from .smtp import Inbox, smtp_inbox  # noqa: F401  (fixture)

COMPLETE = "/api/v1/auth/enrollment/complete"


async def _offer(world: World, token: str):
    return await world.gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)


@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
async def test_links_are_one_time_and_expire(world: World) -> None:
    (await _offer(world, "ce1." + "A" * 43)).problem(401, "enrollment-invalid")
    (await _offer(world, "not a token")).problem(401, "enrollment-invalid")
    old = await enrollment_token(world, world.uploader.email)
    world.clock.advance(hours=72)
    (await _offer(world, old)).problem(410, "enrollment-ended")
    first = await enrollment_token(world, world.uploader.email)
    second = await enrollment_token(world, world.uploader.email)
    offer = (await _offer(world, first)).json()
    done = await world.gw.request("POST", COMPLETE, headers=CSRF, json={
        "token": first, "password": PASSWORD, "totp_code": code_now(world, offer["totp_secret"])})
    assert done.status == 201
    (await _offer(world, second)).problem(410, "enrollment-ended")  # enrolling used up every open link
    entries = await world.audit()
    assert [e["reason"] for e in matching(entries, action="auth.enroll.open", outcome="deny")] == [
        "enrollment_unknown", "enrollment_unknown", "enrollment_expired", "enrollment_used"]


@pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)
async def test_password_and_second_factor_rules(world: World) -> None:
    token = await enrollment_token(world, world.uploader.email)
    secret = (await _offer(world, token)).json()["totp_secret"]
    for password in ("short", "aaaaaaaaaaaaaaaa"):
        reply = await world.gw.request("POST", COMPLETE, headers=CSRF, json={"token": token, "password": password})
        reply.problem(422, "weak-password")
    # an uploader must set up the second factor, with a code that matches the offered secret
    (await world.gw.request("POST", COMPLETE, headers=CSRF, json={"token": token, "password": PASSWORD})
     ).problem(422, "totp-required")
    (await world.gw.request("POST", COMPLETE, headers=CSRF, json={
        "token": token, "password": PASSWORD, "totp_code": "000000" if code_now(world, secret) != "000000"
        else "111111"})).problem(422, "totp-mismatch")
    entries = await world.audit()
    assert [e["reason"] for e in matching(entries, action="auth.enroll", outcome="deny")] == [
        "weak_password", "weak_password", "totp_required", "totp_mismatch"]


@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
async def test_recipients_may_skip_totp_where_their_organisation_allows(world: World) -> None:
    spa = await world.gw.store.query(lambda db: db.identity.find_org(SPA))
    assert (await _offer(world, await enrollment_token(world, world.recipient.email))).json()["totp_required"]
    await world.gw.store.write(lambda tx: tx.accounts.set_recipient_totp(spa.id, False))
    token = await enrollment_token(world, world.recipient.email)
    assert (await _offer(world, token)).json()["totp_required"] is False
    await enroll(world, world.recipient, totp=False)
    browser = await sign_in(world, world.recipient, None)
    assert (await browser.request("GET", "/api/v1/me")).json()["id"] == world.recipient.user_id
    # when the organisation requires it again, a recipient without a second factor must re-enroll
    await world.gw.store.write(lambda tx: tx.accounts.set_recipient_totp(spa.id, True))
    (await sign_in_reply(world, world.recipient.email)).problem(401, "sign-in-failed")
    assert matching(await world.audit(), action="auth.signin", reason="not_enrolled", actor=world.recipient.user_id)


@pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)
async def test_enrolling_again_ends_every_session(world: World) -> None:
    secret = await enroll(world, world.auditor)
    browser = await sign_in(world, world.auditor, secret)
    new_secret = await enroll(world, world.auditor, password=PASSWORD + "-new")
    (await browser.request("GET", "/api/v1/me")).problem(401, "unauthorized")
    (await sign_in_reply(world, world.auditor.email, code=code_now(world, new_secret))).problem(401, "sign-in-failed")
    again = await sign_in_reply(world, world.auditor.email, PASSWORD + "-new", code=code_now(world, new_secret))
    assert again.status == 200


def _run(capsys, *argv: str) -> dict:
    code = main(list(argv) + ["--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_admin_user_create_prints_and_enroll_issues_a_link(tmp_path: Path, capsys) -> None:
    data = ["--data", str(tmp_path / "var")]
    _run(capsys, "admin", "init", *data)
    _run(capsys, "admin", "org", "create", "Glow Test Spa", "--kind", "spa", *data)
    created = _run(capsys, "admin", "user", "create", "new@glow.example.test", "--org", "Glow Test Spa",
                   "--role", "recipient", *data)
    assert created["token"].startswith("cb1.")  # the existing lines stay
    assert created["enrollment_url"].startswith("http://127.0.0.1:8080/enroll#ce1.")
    again = _run(capsys, "admin", "user", "enroll", "new@glow.example.test", *data)
    assert again["user_id"] == created["user_id"] and again["enrollment_url"] != created["enrollment_url"]
    assert "enrollment_mail" not in again  # no SMTP configured
    with pytest.raises(SystemExit) as refused:
        main(["admin", "user", "enroll", "nobody@glow.example.test", *data])
    assert str(refused.value) == "carebridge: error: no user with this e-mail"


def test_enrollment_link_is_mailed_when_smtp_is_configured(tmp_path: Path, capsys, monkeypatch,
                                                            smtp_inbox: Inbox) -> None:
    for name, value in {"SMTP_HOST": smtp_inbox.host, "SMTP_PORT": str(smtp_inbox.port),
                        "SMTP_CA_FILE": str(smtp_inbox.ca_file), "MAIL_FROM": "carebridge@gw.example.test",
                        "PUBLIC_URL": "https://gw.example.test"}.items():
        monkeypatch.setenv("CAREBRIDGE_" + name, value)
    data = ["--data", str(tmp_path / "var")]
    _run(capsys, "admin", "init", *data)
    _run(capsys, "admin", "org", "create", "Sunrise Test Clinic", "--kind", "clinic", *data)
    created = _run(capsys, "admin", "user", "create", "doc@sunrise.example.test", "--org", "Sunrise Test Clinic",
                   "--role", "uploader", *data)
    assert created["enrollment_mail"] == "sent"
    assert created["enrollment_url"].startswith("https://gw.example.test/enroll#ce1.")
    [message] = smtp_inbox.messages
    assert message["To"] == "doc@sunrise.example.test" and message["X-Test-TLS"] == "yes"
    assert created["enrollment_url"] in message.get_content()
    # the secret was sent, never stored: the database holds its hash only
    secret = created["enrollment_url"].split("#ce1.", 1)[1]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("carebridge.db*"))  # WAL too
    assert stored and secret.encode() not in stored
