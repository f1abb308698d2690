"""Sign-in for people (issue 13.1): enrollment, sign-in, sessions and their ends, all on the log.

A real gateway on SQLite and PostgreSQL; TOTP codes come from pyotp at the
server's (test) clock; passwords are hashed with the real Argon2id.
"""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie

import pyotp
import pytest
from carebridge.gateway.server import admin

from .conftest import DB_BACKENDS, SPA, World, matching, rid
from .signin_helpers import CSRF, PASSWORD, Browser, code_now, enroll, enrollment_token, sign_in, sign_in_reply

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

    entries = await world.audit()
    for action, obj in (("auth.enroll.open", None), ("auth.enroll", None), ("auth.signin", browser.session_id)):
        found = matching(entries, action=action, outcome="allow", actor=person.user_id)
        assert found and (obj is None or found[-1]["object"] == obj), action
    assert matching(entries, action="auth.enroll.issue", actor="operator-cli")
    assert matching(entries, action="auth.enroll.open", outcome="deny", reason="enrollment_used")
