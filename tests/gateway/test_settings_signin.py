"""Sign-in settings and the cookie rules that follow from the public URL (gateway/server/cookies.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carebridge.gateway.server import cookies
from carebridge.gateway.server.settings import SettingsError, load
from carebridge.gateway.server.vocabulary import Why


def test_session_defaults_and_overrides() -> None:
    s = load()
    assert (s.session_idle_timeout, s.session_lifetime, s.enrollment_lifetime) == (
        timedelta(minutes=30), timedelta(hours=12), timedelta(hours=72))
    s = load(env={"CAREBRIDGE_SESSION_IDLE_TIMEOUT": "600", "CAREBRIDGE_SESSION_LIFETIME": "3600"})
    assert (s.session_idle_timeout, s.session_lifetime) == (timedelta(minutes=10), timedelta(hours=1))


@pytest.mark.parametrize("env, named", [
    ({"CAREBRIDGE_SESSION_IDLE_TIMEOUT": "0"}, "session_idle_timeout"),
    ({"CAREBRIDGE_SESSION_LIFETIME": "soon"}, "session_lifetime"),
    ({"CAREBRIDGE_ENROLLMENT_LIFETIME": "-5"}, "enrollment_lifetime"),
    ({"CAREBRIDGE_SESSION_IDLE_TIMEOUT": "7200", "CAREBRIDGE_SESSION_LIFETIME": "3600"}, "session_idle_timeout"),
])
def test_bad_values_name_the_setting(env: dict, named: str) -> None:
    with pytest.raises(SettingsError, match=f"^{named}:"):
        load(env=env)


@pytest.mark.parametrize("public_url, secure, origin", [
    ("", False, "http://127.0.0.1:8080"),  # the default: plain http on loopback (development)
    ("http://localhost:8080/", False, "http://localhost:8080"),
    ("http://[::1]:9000", False, "http://[::1]:9000"),
    ("https://Gateway.Example.Test/", True, "https://gateway.example.test"),
    ("https://gateway.example.test:8443/base", True, "https://gateway.example.test:8443"),
    ("http://gateway.example.test", True, "http://gateway.example.test"),  # not loopback: Secure anyway
])
def test_cookie_name_security_and_origin(public_url: str, secure: bool, origin: str) -> None:
    s = load(overrides={"public_url": public_url} if public_url else None)
    assert cookies.secure(s) is secure
    assert cookies.name(s) == ("__Host-carebridge-session" if secure else "carebridge-session")
    assert cookies.public_origin(s) == origin


def test_csrf_rule() -> None:
    s = load(overrides={"public_url": "https://gateway.example.test"})
    good = {"X-Carebridge-CSRF": "1", "Origin": "https://gateway.example.test"}
    assert cookies.csrf_fault("POST", good, s) is None
    assert cookies.csrf_fault("GET", {}, s) is None  # reads change nothing
    assert cookies.csrf_fault("DELETE", {"Origin": good["Origin"]}, s) is Why.csrf_header
    assert cookies.csrf_fault("PATCH", {**good, "X-Carebridge-CSRF": "yes"}, s) is Why.csrf_header
    assert cookies.csrf_fault("PUT", {"X-Carebridge-CSRF": "1"}, s) is Why.csrf_origin
    assert cookies.csrf_fault("POST", {**good, "Origin": "https://gateway.example.test.evil.test"}, s) is Why.csrf_origin
    assert cookies.csrf_fault("POST", {"X-Carebridge-CSRF": "1"}, s, require_origin=False) is None
    assert cookies.csrf_fault("POST", {**good, "Origin": "null"}, s, require_origin=False) is Why.csrf_origin


def test_cookie_values_parse_only_when_well_formed() -> None:
    new = cookies.make_session()
    assert cookies.parse(new.cookie) == new.secret_hash and new.cookie not in repr(new)
    for bad in ("", "cs1.", new.cookie + "x", new.cookie[:-1], "cs2." + new.cookie[4:], new.cookie + "A" * 200):
        assert cookies.parse(bad) is None
