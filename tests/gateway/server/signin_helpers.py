"""Helpers for the sign-in suite: enroll a person through the API, sign in, call with the cookie."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import pyotp
from carebridge.gateway.server import admin, cookies

from .conftest import Gateway, Person, Reply, World

CSRF = {"X-Carebridge-CSRF": "1"}
PASSWORD = "correct-horse-battery-TEST-1"  # synthetic


@dataclass
class Browser:
    """A signed-in browser: the cookie's value, and what it takes to send it."""

    gw: Gateway
    cookie: str = field(repr=False)
    session_id: str
    set_cookie: str = ""  # the Set-Cookie header of the sign-in answer

    @property
    def name(self) -> str:
        return cookies.name(self.gw.settings)

    def headers(self, *, csrf: bool = True, origin: str | None = "") -> dict[str, str]:
        """The cookie, the CSRF header (unless *csrf* is False) and an Origin ('' = the gateway's)."""
        headers = {"Cookie": f"{self.name}={self.cookie}"}
        if csrf:
            headers.update(CSRF)
        if origin == "":
            origin = cookies.public_origin(self.gw.settings)
        if origin is not None:
            headers["Origin"] = origin
        return headers

    async def request(self, method: str, path: str, *, headers: dict | None = None, **kw) -> Reply:
        return await self.gw.request(method, path, headers={**self.headers(), **(headers or {})}, **kw)


async def enrollment_token(world: World, email: str) -> str:
    _, link = await asyncio.to_thread(admin.enroll, world.gw.store, world.gw.settings, email)
    return link.url.split("#", 1)[1]


def code_now(world: World, secret: str) -> str:
    """A fresh TOTP code: the clock moves to the next 30 s step first (a code is accepted once)."""
    world.clock.advance(seconds=30)
    return pyotp.TOTP(secret).at(world.clock.now)


async def enroll(world: World, person: Person, *, password: str = PASSWORD, totp: bool = True) -> str | None:
    """Enroll *person* through the API; returns their TOTP secret (None without one)."""
    token = await enrollment_token(world, person.email)
    offer = await world.gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)
    assert offer.status == 200, offer.body
    secret = offer.json()["totp_secret"]
    body = {"token": token, "password": password}
    if totp:
        body["totp_code"] = code_now(world, secret)
    done = await world.gw.request("POST", "/api/v1/auth/enrollment/complete", json=body, headers=CSRF)
    assert done.status == 201, done.body
    return secret if totp else None


async def sign_in_reply(world: World, email: str, password: str = PASSWORD, code: str | None = None,
                        headers: dict | None = None) -> Reply:
    body = {"email": email, "password": password}
    if code is not None:
        body["totp_code"] = code
    return await world.gw.request("POST", "/api/v1/auth/signin", json=body, headers={**CSRF, **(headers or {})})


async def sign_in(world: World, person: Person, secret: str | None) -> Browser:
    reply = await sign_in_reply(world, person.email, code=code_now(world, secret) if secret else None)
    assert reply.status == 200, reply.body
    jar = SimpleCookie(reply.headers["Set-Cookie"])
    name = cookies.name(world.gw.settings)
    return Browser(world.gw, jar[name].value, reply.json()["session_id"], reply.headers["Set-Cookie"])
