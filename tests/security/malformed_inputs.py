"""The malformed inputs of ``test_malformed.py``: raw values, JSON bodies, multipart bodies, headers.

Path and query values are given already percent-encoded (sent as-is), so
that bad escapes and bad UTF-8 reach the server unchanged. ``CANARY`` is in
every header value the tests send: it must never reach a server log line.
"""

from __future__ import annotations

from typing import Any

from .conftest import CANARY

LONG = 4000  # characters: far past any id, yet inside aiohttp's 8190-byte request line
# Raw (already percent-encoded) values for path and query parameters.
BAD_VALUES = {
    "nul": "%00",
    "nul-inside": "doc_%00" + "A" * 22,
    "bad-utf8-overlong": "%C0%AF",
    "bad-utf8-lone-continuation": "%80%80",
    "bad-utf8-truncated": "%C3%28",
    "bad-utf8-ff": "%FF%FE",
    "lone-percent": "%",
    "bad-percent-escape": "%zz",
    "very-long": "a" * LONG,
    "past-64-bits": "18446744073709551617",
    "huge-integer": "9" * 400,
    "negative": "-1",
    "negative-past-64-bits": "-18446744073709551617",
    "non-numeric": "abc",
    "float": "1e309",
    "hex": "0x10",
    "empty": "",
    "space": "%20",
    "dot-dot": "..%2F..%2Fkeys",
    "control-chars": "%0D%0Aset-cookie%3A%20x",
    "unicode": "%E2%80%AE%F0%9F%98%80",
}
# JSON bodies wrong for every JSON route.
BAD_JSON: dict[str, bytes] = {
    "empty": b"",
    "nul": b"\x00",
    "bad-utf8": b"\xff\xfe{}",
    "deep-arrays": b"[" * 100_000,
    "deep-objects": b'{"a":' * 50_000,
    "array": b"[]",
    "string": b'"x"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
    "empty-object": b"{}",
    "truncated": b'{"a": "b"',
    "integer-past-64-bits": b'{"a": 18446744073709551617}',
    "integer-of-5000-digits": b'{"a": ' + b"9" * 5000 + b"}",
    "nan": b'{"a": NaN}',
    "infinity": b'{"a": 1e400}',
    "duplicate-keys": b'{"a": 1, "a": 2}',
    "too-large": b'{"a": "' + b"x" * (2 << 20) + b'"}',
}
# Per route: fields of the right name with the wrong type or range.
ROUTE_JSON: dict[str, dict[str, Any]] = {
    "/api/v1/documents/{id}/policy": {
        "expires-at-number": {"expires_at": 18446744073709551617},
        "expires-at-text": {"expires_at": "tomorrow"},
        "expires-at-year-9999": {"expires_at": "9999-12-31T23:59:59Z"},
        "expires-at-year-1": {"expires_at": "0001-01-01T00:00:00Z"},
        "expires-at-nul": {"expires_at": "2030-01-01T00:00:00Z\u0000"},
        "legal-hold-string": {"legal_hold": "yes"},
        "legal-hold-number": {"legal_hold": 1},
        "revoke-false": {"revoke": False},
        "revoke-recipient-number": {"revoke_recipient": -1},
        "revoke-recipient-long": {"revoke_recipient": "usr_" + "a" * LONG},
        "two-changes": {"legal_hold": True, "revoke": True},
        "nested": {"expires_at": {"expires_at": ["2030-01-01T00:00:00Z"]}},
    },
    "/api/v1/documents/{id}/links": {
        "recipient-number": {"recipient": 18446744073709551617},
        "recipient-negative": {"recipient": -1},
        "recipient-list": {"recipient": ["usr_x"]},
        "recipient-nul": {"recipient": "usr_\u0000"},
        "recipient-long": {"recipient": "usr_" + "a" * LONG},
        "mode-number": {"recipient": "usr_x", "mode": 1},
        "mode-unknown": {"recipient": "usr_x", "mode": "admin"},
        "extra-field": {"recipient": "usr_x", "uses": 10**30},
    },
    # Sign-in and enrollment (public): wrong types and sizes, and the canary where a secret goes.
    "/api/v1/auth/signin": {
        "email-number": {"email": 18446744073709551617, "password": "x"},
        "email-list": {"email": ["a@example.test"], "password": "x"},
        "email-long": {"email": "a" * LONG + "@example.test", "password": "x"},
        "email-empty": {"email": "", "password": "x"},
        "password-missing": {"email": "nobody@example.test"},
        "password-null": {"email": "nobody@example.test", "password": None},
        "password-long": {"email": "nobody@example.test", "password": "p" * 2000},
        "password-canary": {"email": "nobody@example.test", "password": f"pw-{CANARY}"},
        "totp-code-number": {"email": "nobody@example.test", "password": "x", "totp_code": 123456},
        "totp-code-long": {"email": "nobody@example.test", "password": "x", "totp_code": "1" * LONG},
    },
    "/api/v1/auth/enrollment": {
        "token-number": {"token": 1},
        "token-nul": {"token": "ce1.\u0000"},
        "token-long": {"token": "ce1." + "A" * LONG},
        "token-canary": {"token": f"ce1.{CANARY}"},
    },
    "/api/v1/auth/enrollment/complete": {
        "token-missing": {"password": "correct-horse-battery-TEST-1"},
        "token-canary": {"token": f"ce1.{CANARY}", "password": f"pw-{CANARY}-long-enough"},
        "password-number": {"token": "ce1.x", "password": 123456789012},
        "password-long": {"token": "ce1.x", "password": "p" * 2000},
        "totp-code-list": {"token": "ce1.x", "password": "correct-horse-battery-TEST-1", "totp_code": ["1"]},
    },
    "/api/v1/keys": {
        "registration-wrong-types": {"registration": [], "signature": 1},
        "registration-fields-wrong": {"registration": {"user_id": 1, "time": 18446744073709551617,
                                                       "verify_key": None, "age_recipient": {},
                                                       "version": -1}, "signature": "!!"},
        "signature-not-base64": {"registration": {}, "signature": "%%%"},
    },
}
MULTIPART = "multipart/form-data"
BOUNDARY = "cb-test-boundary"


def _multipart_bodies() -> dict[str, tuple[str, bytes]]:
    """name -> (Content-Type, body) for the upload."""
    opening = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n".encode()
    one_part = opening + b"{}\r\n"
    typed = f"{MULTIPART}; boundary={BOUNDARY}"
    return {
        "no-boundary": (MULTIPART, one_part + f"--{BOUNDARY}--\r\n".encode()),
        "empty-boundary": (f"{MULTIPART}; boundary=", one_part),
        "boundary-too-long": (f"{MULTIPART}; boundary={'b' * 200}", b"--" + b"b" * 200 + b"--\r\n"),
        "no-closing-delimiter": (typed, one_part),
        "truncated-in-headers": (typed, f"--{BOUNDARY}\r\nContent-Disposition: form-da".encode()),
        "truncated-in-part": (typed, opening + b'{"version": 1, "docu'),
        "empty-body": (typed, b""),
        "only-closing-delimiter": (typed, f"--{BOUNDARY}--\r\n".encode()),
        "garbage": (typed, b"\x00\xff" * 1000),
        "wrong-part-name": (typed, opening.replace(b"manifest", b"content") + b"x\r\n"
                            + f"--{BOUNDARY}--\r\n".encode()),
        "part-name-nul": (typed, opening.replace(b"manifest", b"man\x00ifest") + b"x\r\n"
                          + f"--{BOUNDARY}--\r\n".encode()),
        "part-header-bad-utf8": (typed, opening.replace(b"manifest", b"\xff\xfe") + b"x\r\n"
                                 + f"--{BOUNDARY}--\r\n".encode()),
        "json-instead": ("application/json", b"{}"),
        "form-urlencoded": ("application/x-www-form-urlencoded", b"manifest=%00"),
    }


BAD_MULTIPART = _multipart_bodies()


BAD_AUTHORIZATION = {
    "no-scheme": f"cb1.{CANARY}.{CANARY}",
    "basic": f"Basic {CANARY}",
    "bearer-empty": "Bearer ",
    "bearer-garbage": f"Bearer {CANARY}",
    "bearer-forged": f"Bearer cb1.{CANARY}.{CANARY}",
    "bearer-very-long": f"Bearer cb1.{CANARY}." + "A" * LONG,
    "bearer-latin1": f"Bearer cb1.{CANARY}.\u00e9\u00e8",
    "two-tokens": f"Bearer cb1.{CANARY}.x, Bearer cb1.{CANARY}.y",
}


BAD_PURPOSE = {"unknown": f"purpose-{CANARY}", "empty": "", "very-long": "t" * LONG,
               "latin1": "treatm\u00e9nt", "two": "treatment, care_coordination"}

# PUT /api/v1/me/key-file takes the key file's bytes as they are (application/octet-stream).
BAD_OCTETS = {
    "octets-empty": b"",
    "octets-garbage": b"\x00\xff" * 512,
    "octets-armor-only": b"-----BEGIN AGE ENCRYPTED FILE-----\n-----END AGE ENCRYPTED FILE-----\n",
    "octets-too-large": b"A" * (64 * 1024 + 1),
}
