"""Sign-in for people (issue 13.1): enrollment, sign-in, sessions and their ends, all on the log.

A real gateway on SQLite and PostgreSQL; TOTP codes come from pyotp at the
server's (test) clock; passwords are hashed with the real Argon2id.
"""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie

import pyotp
import pytest

from .conftest import DB_BACKENDS, World, matching, rid
from .signin_helpers import CSRF, PASSWORD, code_now, enroll, enrollment_token, sign_in, sign_in_reply

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)


async def test_enroll_sign_in_and_use_the_api_with_the_session(world: World) -> None:
    gw, person = world.gw, world.uploader
    token = await enrollment_token(world, person.email)
    offer = await gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)
    assert offer.status == 200, offer.body
    view = offer.json()
    assert (view["user_id"], view["email"], view["role"], view["totp_required"]) == (
        person.user_id, person.email, "uploader", True)
    secret = view["totp_secret"]
    assert pyotp.parse_uri(view["totp_uri"]).secret == secret
    again = await gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)
    assert again.json()["totp_secret"] == secret  # a page reload offers the same secret
    done = await gw.request("POST", "/api/v1/auth/enrollment/complete", headers=CSRF, json={
        "token": token, "password": PASSWORD, "totp_code": code_now(world, secret)})
    assert done.status == 201, done.body
    used = await gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)
    used.problem(410, "enrollment-ended")  # one-time: the secret is not given out again
    assert secret.encode() not in used.body

    browser = await sign_in(world, person, secret)
    me = await browser.request("GET", "/api/v1/me")
    assert me.status == 200 and me.json()["id"] == person.user_id
    inbox = await browser.request("GET", "/api/v1/inbox")
    assert inbox.status == 200 and inbox.json()["documents"] == []
    listed = (await browser.request("GET", "/api/v1/auth/sessions")).json()["sessions"]
    assert [(s["id"], s["current"]) for s in listed] == [(browser.session_id, True)]
    assert listed[0]["address"] == "127.0.0.1"  # where it signed in from, to tell one's sessions apart

    entries = await world.audit()
    for action, obj in (("auth.enroll.open", None), ("auth.enroll", None), ("auth.signin", browser.session_id)):
        found = matching(entries, action=action, outcome="allow", actor=person.user_id)
        assert found and (obj is None or found[-1]["object"] == obj), action
    assert matching(entries, action="auth.enroll.issue", actor="operator-cli")
    assert matching(entries, action="auth.enroll.open", outcome="deny", reason="enrollment_used")


async def test_failures_answer_the_same_and_the_log_keeps_why(world: World) -> None:
    secret = await enroll(world, world.uploader)
    email = world.uploader.email
    attempts = {
        "unknown_account": dict(email="nobody@sunrise.example.test", code=code_now(world, secret)),
        "wrong_password": dict(email=email, password=PASSWORD + "x", code=code_now(world, secret)),
        "wrong_totp": dict(email=email, code=f"{(int(code_now(world, secret)) + 1) % 1_000_000:06d}"),
        "wrong_totp:missing": dict(email=email),
    }
    answers, seconds = {}, {}
    for case, attempt in attempts.items():
        request_id = rid()
        started = asyncio.get_running_loop().time()
        reply = await sign_in_reply(world, headers={"X-Request-ID": request_id}, **attempt)
        seconds[case] = asyncio.get_running_loop().time() - started
        body = reply.problem(401, "sign-in-failed")
        assert "Set-Cookie" not in reply.headers
        answers[case] = (body, request_id)
    assert len({repr(body) for body, _ in answers.values()}) == 1  # not a byte of difference
    # An unknown e-mail costs an Argon2id verification too (no timing oracle). The fastest
    # of three tries each: the machine's load only ever adds time.
    for case in ("unknown_account", "wrong_password"):
        for _ in range(2):
            started = asyncio.get_running_loop().time()
            await sign_in_reply(world, **attempts[case])
            seconds[case] = min(seconds[case], asyncio.get_running_loop().time() - started)
    assert seconds["unknown_account"] > 0.5 * seconds["wrong_password"], seconds
    entries = await world.audit()
    for case, (_, request_id) in answers.items():
        [entry] = matching(entries, request_id=request_id, action="auth.signin")
        assert (entry["outcome"], entry["reason"]) == ("deny", case.split(":")[0])
        assert entry["actor"] == (None if case == "unknown_account" else world.uploader.user_id)


async def test_a_code_is_accepted_once(world: World) -> None:
    secret = await enroll(world, world.auditor)
    code = code_now(world, secret)
    first = await sign_in_reply(world, world.auditor.email, code=code)
    assert first.status == 200, first.body
    replay = await sign_in_reply(world, world.auditor.email, code=code)
    replay.problem(401, "sign-in-failed")
    assert matching(await world.audit(), action="auth.signin", reason="totp_replayed")


async def test_session_cookie_attributes_on_plain_http_loopback(world: World) -> None:
    browser = await sign_in(world, world.recipient, await enroll(world, world.recipient))
    morsel = SimpleCookie(browser.set_cookie)["carebridge-session"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert not morsel["secure"] and not morsel["domain"]  # plain http on 127.0.0.1: a browser drops Secure
    assert int(morsel["max-age"]) == 12 * 3600


async def test_session_cookie_is_host_prefixed_and_secure_behind_tls(world_factory) -> None:
    world = await world_factory(public_url="https://carebridge.example.test")
    browser = await sign_in(world, world.recipient, await enroll(world, world.recipient))
    morsel = SimpleCookie(browser.set_cookie)["__Host-carebridge-session"]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Strict"
    assert morsel["path"] == "/" and not morsel["domain"]  # what __Host- requires
    me = await browser.request("GET", "/api/v1/me")
    assert me.json()["id"] == world.recipient.user_id
    # the plain name is not accepted on a TLS gateway
    plain = await world.gw.request("GET", "/api/v1/me", headers={"Cookie": f"carebridge-session={browser.cookie}"})
    plain.problem(401, "unauthorized")


async def test_idle_timeout_counts_from_the_last_request(world: World) -> None:
    browser = await sign_in(world, world.recipient, await enroll(world, world.recipient))
    for _ in range(3):  # active every 29 minutes: 87 minutes, past one idle timeout
        world.clock.advance(minutes=29)
        assert (await browser.request("GET", "/api/v1/me")).status == 200
    world.clock.advance(minutes=30)
    request_id = rid()
    reply = await browser.request("GET", "/api/v1/me", headers={"X-Request-ID": request_id})
    reply.problem(401, "unauthorized")
    [entry] = matching(await world.audit(), request_id=request_id)
    assert (entry["action"], entry["reason"], entry["actor"], entry["object"]) == (
        "auth", "session_idle", world.recipient.user_id, browser.session_id)


async def test_absolute_timeout_ends_even_an_active_session(world: World) -> None:
    browser = await sign_in(world, world.recipient, await enroll(world, world.recipient))
    for _ in range(35):  # a request every 20 minutes, for 11 h 40 min
        world.clock.advance(minutes=20)
        assert (await browser.request("GET", "/api/v1/inbox")).status == 200
    world.clock.advance(minutes=20)
    request_id = rid()
    (await browser.request("GET", "/api/v1/inbox", headers={"X-Request-ID": request_id})).problem(
        401, "unauthorized")
    assert matching(await world.audit(), request_id=request_id, action="auth", reason="session_expired",
                    object=browser.session_id)


async def test_sign_out_and_revoke_end_sessions(world: World) -> None:
    secret = await enroll(world, world.recipient)
    laptop, phone = await sign_in(world, world.recipient, secret), await sign_in(world, world.recipient, secret)
    listed = (await laptop.request("GET", "/api/v1/auth/sessions")).json()["sessions"]
    assert {s["id"]: s["current"] for s in listed} == {laptop.session_id: True, phone.session_id: False}

    # someone else cannot end them, nor learn that they exist
    stranger = await sign_in(world, world.stranger, await enroll(world, world.stranger))
    (await stranger.request("POST", f"/api/v1/auth/sessions/{phone.session_id}/revoke")).problem(404, "not-found")
    revoked = await laptop.request("POST", f"/api/v1/auth/sessions/{phone.session_id}/revoke")
    assert revoked.status == 204 and "Set-Cookie" not in revoked.headers  # not this session: cookie kept
    (await phone.request("GET", "/api/v1/me")).problem(401, "unauthorized")

    out = await laptop.request("POST", "/api/v1/auth/signout")
    assert out.status == 204
    cleared = SimpleCookie(out.headers["Set-Cookie"])["carebridge-session"]
    assert cleared.value == "" and cleared["max-age"] == "0"
    (await laptop.request("GET", "/api/v1/me")).problem(401, "unauthorized")
    # sign-out is for sessions; an API token has none
    (await world.gw.request("POST", "/api/v1/auth/signout", token=world.recipient.token)).problem(409, "no-session")

    entries = await world.audit()
    user = world.recipient.user_id
    assert matching(entries, action="auth.session.revoke", outcome="allow", actor=user, object=phone.session_id)
    assert matching(entries, action="auth.session.revoke", outcome="deny", actor=world.stranger.user_id)
    assert matching(entries, action="auth.signout", outcome="allow", actor=user, object=laptop.session_id)
    assert matching(entries, action="auth", reason="session_ended", object=phone.session_id)
    assert matching(entries, action="auth", reason="session_ended", object=laptop.session_id)


async def test_csrf_header_and_origin_are_required_with_the_cookie(world: World) -> None:
    browser = await sign_in(world, world.recipient, await enroll(world, world.recipient))
    cases = {
        "csrf_header": browser.headers(csrf=False),
        "csrf_origin": browser.headers(origin="https://evil.example.test"),
        "csrf_origin:none": browser.headers(origin=None),
    }
    sent = {}
    for case, headers in cases.items():
        sent[case] = rid()
        reply = await world.gw.request("DELETE", "/api/v1/keys", headers={**headers, "X-Request-ID": sent[case]})
        body = reply.problem(403, "csrf")
        assert body["reason"] == case.split(":")[0]
    # reads need neither; nothing was revoked by the refused requests
    keys = await world.gw.request("GET", f"/api/v1/users/{world.recipient.user_id}/keys",
                                  headers=browser.headers(csrf=False, origin=None))
    assert [k["status"] for k in keys.json()["keys"]] == ["active"]
    entries = await world.audit()
    for case, request_id in sent.items():
        [entry] = matching(entries, request_id=request_id)
        assert (entry["action"], entry["outcome"], entry["reason"], entry["actor"]) == (
            "keys.revoke", "deny", case.split(":")[0], world.recipient.user_id)
    # with both the header and the gateway's Origin, the same request is allowed
    assert (await browser.request("DELETE", "/api/v1/keys")).status == 204


async def test_bearer_requests_are_unaffected_and_win_over_the_cookie(world: World) -> None:
    browser = await sign_in(world, world.recipient, await enroll(world, world.recipient))
    # a bearer token needs no CSRF header (a browser never attaches one by itself)
    revoked = await world.gw.request("DELETE", "/api/v1/keys", token=world.recipient2.token)
    assert revoked.status == 204
    both = await world.gw.request("GET", "/api/v1/me", token=world.uploader.token,
                                  headers=browser.headers(csrf=False, origin=None))
    assert both.json()["id"] == world.uploader.user_id


async def test_sign_in_and_enrollment_refuse_cross_site_requests(world: World) -> None:
    await enroll(world, world.recipient)
    token = await enrollment_token(world, world.recipient2.email)
    for path, body in (("/api/v1/auth/signin", {"email": world.recipient.email, "password": PASSWORD}),
                       ("/api/v1/auth/enrollment", {"token": token})):
        (await world.gw.request("POST", path, json=body)).problem(403, "csrf")
        (await world.gw.request("POST", path, json=body, headers={**CSRF, "Origin": "https://evil.example.test"})
         ).problem(403, "csrf")


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}  # the gateway trusts 127.0.0.1 as a proxy in these tests


async def test_lockout_per_account_holds_across_addresses_known_or_not(world_factory) -> None:
    world = await world_factory(auth_failure_limit=3, trusted_proxies="127.0.0.1")
    secret = await enroll(world, world.uploader)
    for email in (world.uploader.email, "nobody@sunrise.example.test"):
        for n in range(3):  # three wrong passwords, each from another address
            wrong = await sign_in_reply(world, email, PASSWORD + "x", headers=_from(f"198.51.100.{n + 1}"))
            wrong.problem(401, "sign-in-failed")
        # the right password, from a fresh address: the account is locked, the same for both e-mails
        locked = await sign_in_reply(world, email, code=code_now(world, secret), headers=_from("198.51.100.9"))
        locked.problem(429, "rate-limited")
        assert int(locked.headers["Retry-After"]) > 0
    # other accounts from those addresses are not locked
    other = await enroll(world, world.auditor)
    ok = await sign_in_reply(world, world.auditor.email, code=code_now(world, other), headers=_from("198.51.100.1"))
    assert ok.status == 200, ok.body
    entries = await world.audit()
    lockouts = matching(entries, action="auth.lockout")
    assert [e["object"] for e in lockouts] == [world.uploader.user_id, None]  # a user id, never an e-mail
    assert matching(entries, action="auth.signin", reason="locked_out", actor=None)


async def test_lockout_per_address_counts_sign_ins_and_bad_cookies(world_factory) -> None:
    world = await world_factory(auth_failure_limit=3, trusted_proxies="127.0.0.1")
    secret = await enroll(world, world.uploader)
    attacker = _from("203.0.113.7")
    await sign_in_reply(world, "one@sunrise.example.test", headers=attacker)
    await sign_in_reply(world, "two@sunrise.example.test", headers=attacker)
    forged = await world.gw.request("GET", "/api/v1/me", headers={
        **attacker, "Cookie": "carebridge-session=cs1." + "A" * 43})
    forged.problem(401, "unauthorized")
    locked = await sign_in_reply(world, world.uploader.email, code=code_now(world, secret), headers=attacker)
    locked.problem(429, "rate-limited")
    ok = await sign_in_reply(world, world.uploader.email, code=code_now(world, secret),
                             headers=_from("203.0.113.8"))
    assert ok.status == 200, ok.body
    entries = await world.audit()
    assert matching(entries, action="auth", reason="bad_session", client="203.0.113.7")
    assert matching(entries, action="auth.lockout", client="203.0.113.7", object=None)


async def test_no_secret_reaches_a_log_line_or_an_error(world: World, caplog) -> None:
    caplog.set_level("DEBUG")
    person = world.recipient
    token = await enrollment_token(world, person.email)
    offer = await world.gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)
    secret = offer.json()["totp_secret"]
    replies = [await world.gw.request("POST", "/api/v1/auth/enrollment/complete", headers=CSRF, json={
        "token": token, "password": "short"})]
    code = code_now(world, secret)
    done = await world.gw.request("POST", "/api/v1/auth/enrollment/complete", headers=CSRF, json={
        "token": token, "password": PASSWORD, "totp_code": code})
    assert done.status == 201
    replies.append(await world.gw.request("POST", "/api/v1/auth/enrollment/complete", headers=CSRF, json={
        "token": token, "password": PASSWORD, "totp_code": code}))
    replies.append(await sign_in_reply(world, person.email, PASSWORD + "!", code=code_now(world, secret)))
    browser = await sign_in(world, person, secret)
    await browser.request("POST", "/api/v1/auth/signout")
    replies.append(await browser.request("GET", "/api/v1/me"))
    replies.append(await world.gw.request("POST", "/api/v1/auth/signin", headers=CSRF, data=b"{"))

    secrets_ = [PASSWORD, secret, token, token.split(".", 1)[1], browser.cookie, browser.cookie.split(".", 1)[1]]
    lines = [r.getMessage() for r in caplog.records]
    exported = [repr(e) for e in await world.audit()]
    bodies = [r.body.decode() for r in replies]
    assert lines and exported and all(r.status >= 400 for r in replies)
    for text in lines + exported + bodies:
        for value in secrets_:
            assert value not in text
