"""The manifest's optional ``redaction_profile``: signed when present, absent means the old bytes."""

from __future__ import annotations

import base64
import json

import pytest

from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.errors import ManifestError
from carebridge.crypto.manifest import Manifest, ProfileRef, sign_manifest, verify_manifest
from carebridge.crypto.signing import MANIFEST_CONTEXT
from tests.crypto.test_manifest import SENDER_KEY, build_manifest, plain_canonical

REF = ProfileRef(id="sunrise-test-profile", version=3)


def test_absent_profile_keeps_the_old_canonical_bytes_and_signatures() -> None:
    manifest = build_manifest()
    body = manifest.to_dict()
    assert "redaction_profile" not in body
    # signed before the key existed (by hand, with no help from the new code): still verifies
    signature = base64.b64encode(SENDER_KEY.sign(MANIFEST_CONTEXT, plain_canonical(body))).decode()
    old_wire = plain_canonical({"manifest": body, "signature": signature})
    assert verify_manifest(old_wire, SENDER_KEY.public) == manifest
    assert verify_manifest(old_wire, SENDER_KEY.public).redaction_profile is None


def test_profile_is_signed_and_round_trips() -> None:
    manifest = build_manifest(redaction_profile=REF)
    assert manifest.to_dict()["redaction_profile"] == {"id": "sunrise-test-profile", "version": 3}
    assert Manifest.from_json(manifest.to_json()) == manifest
    wire = sign_manifest(manifest, SENDER_KEY)
    assert verify_manifest(wire, SENDER_KEY.public).redaction_profile == REF
    # changing the named version breaks the signature
    forged = wire.replace(b'"version":3}', b'"version":4}')
    assert forged != wire
    with pytest.raises(ManifestError, match="signature"):
        verify_manifest(forged, SENDER_KEY.public)


@pytest.mark.parametrize(("value", "field"), [
    (None, "redaction_profile"),
    ({"id": "Has Space", "version": 1}, "redaction_profile.id"),
    ({"id": "p", "version": 0}, "redaction_profile.version"),
    ({"id": "p", "version": True}, "redaction_profile.version"),
    ({"id": "p", "version": 2**31}, "redaction_profile.version"),
    ({"id": "p"}, "redaction_profile.version"),
    ({"id": "p", "version": 1, "rules": {}}, "redaction_profile.rules"),
])
def test_bad_profile_references_are_refused_naming_the_field(value: object, field: str) -> None:
    body = build_manifest().to_dict() | {"redaction_profile": value}
    with pytest.raises(ManifestError, match=field.replace(".", r"\.")):
        Manifest.from_json(canonical_json(body))


def test_constructor_checks_the_reference() -> None:
    with pytest.raises(ManifestError, match="redaction_profile.id"):
        build_manifest(redaction_profile=ProfileRef(id="", version=1))
    assert json.loads(build_manifest(redaction_profile=REF).to_json())["redaction_profile"]["version"] == 3
