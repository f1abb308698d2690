"""The optional ``web_release`` of manifests and key registrations signed in a browser (#13 item 7).

Signed with the rest when present (so the release that made a document or a
key is on the record), absent means the bytes of before, malformed is refused.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from carebridge.crypto.canonical import canonical_json, parse_canonical_json
from carebridge.crypto.errors import ManifestError, SignatureError
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.manifest import Manifest, sign_manifest, verify_manifest
from carebridge.crypto.registration import sign_registration, verify_registration
from tests.crypto.test_manifest import SENDER_KEY, build_manifest

ROOT = "5f" * 32
NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=timezone.utc)
KEYS = UserKeys.generate()


def test_a_manifest_names_its_release_signed_and_round_trips() -> None:
    manifest = build_manifest(web_release=ROOT)
    assert manifest.to_dict()["web_release"] == ROOT
    assert "web_release" not in build_manifest().to_dict()
    wire = sign_manifest(manifest, SENDER_KEY)
    assert verify_manifest(wire, SENDER_KEY.public).web_release == ROOT
    forged = wire.replace(ROOT.encode(), ("6f" * 32).encode())
    with pytest.raises(ManifestError, match="signature"):
        verify_manifest(forged, SENDER_KEY.public)


@pytest.mark.parametrize("value", ["5F" * 32, "5f" * 31, 5, "", None])
def test_a_malformed_release_in_a_manifest_is_refused(value: object) -> None:
    body = build_manifest().to_dict() | {"web_release": value}
    with pytest.raises(ManifestError, match="web_release"):
        Manifest.from_json(canonical_json(body))


def test_a_registration_names_its_release_signed() -> None:
    wire = sign_registration(user_id="usr_web", age_recipient=KEYS.recipient, key=KEYS.signing_key, now=NOW,
                             web_release=ROOT)
    assert verify_registration(wire).web_release == ROOT
    plain = sign_registration(user_id="usr_web", age_recipient=KEYS.recipient, key=KEYS.signing_key, now=NOW)
    assert b"web_release" not in plain and verify_registration(plain).web_release is None
    forged = wire.replace(ROOT.encode(), ("6f" * 32).encode())
    with pytest.raises(SignatureError, match="does not verify"):
        verify_registration(forged)


@pytest.mark.parametrize("value", ["5F" * 32, "zz" * 32, 7])
def test_a_malformed_release_in_a_registration_is_refused(value: object) -> None:
    wire = parse_canonical_json(sign_registration(user_id="usr_web", age_recipient=KEYS.recipient,
                                                  key=KEYS.signing_key, now=NOW, web_release=ROOT))
    wire["registration"]["web_release"] = value
    with pytest.raises(SignatureError, match="web_release"):
        verify_registration(canonical_json(wire))
