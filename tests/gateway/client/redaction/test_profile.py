"""A clinic's redaction profile: block, warn or off per rule; validated; applied by the gate and by inspect."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from carebridge.gateway.client.redaction import (
    FAKE_REDACTION,
    InvalidProfile,
    Profile,
    RedactionBlocked,
    cli,
    gate,
    inspect_document,
    load_profile,
)

from . import pdfgen

# A name the spa needs (minimum necessary), and a ZIP code, beside an SSN that must still block.
LINES = ["Treatment summary (synthetic)", "Client: Jane Testperson", "Springfield, IL 62701",
         "SSN: 123-45-6789", "Follow-up in 4 weeks"]
PROFILE = {"format": "carebridge-redaction-profile/1", "id": "example-clinic", "version": 3,
           "rules": {"person-name": "warn", "zip-code": "off"}}


def _profile(**changes: object) -> bytes:
    return json.dumps({**PROFILE, **changes}).encode()


@pytest.fixture(scope="module")
def inspection():
    return inspect_document(pdfgen.summary(LINES))


def test_warn_passes_with_a_warning_off_is_ignored_the_rest_still_blocks(inspection) -> None:
    profile = load_profile(_profile())
    with pytest.raises(RedactionBlocked) as blocked:
        gate(inspection, profile=profile)
    assert [f.rule for f in blocked.value.blocking] == ["ssn"]
    result = gate(inspection, profile=profile, allow=["ssn"], reason="test of the override path")
    assert [f.rule for f in result.warnings] == ["person-name"]
    assert result.override is not None and result.override.rules == ("ssn",)
    assert result.profile is profile and profile.reference() == {"id": "example-clinic", "version": 3}


def test_without_a_profile_every_finding_blocks(inspection) -> None:
    with pytest.raises(RedactionBlocked) as blocked:
        gate(inspection)
    assert {f.rule for f in blocked.value.blocking} == {"person-name", "zip-code", "ssn"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "other/1"}, "profile format"),
    ({"id": "Example Clinic"}, "profile id"),
    ({"id": 7}, "profile id"),
    ({"version": 0}, "profile version"),
    ({"version": True}, "profile version"),
    ({"version": "3"}, "profile version"),
    ({"rules": {"no-such-rule": "off"}}, "unknown rule id(s) no-such-rule"),
    ({"rules": {"ssn": "maybe"}}, "ssn must be one of block, warn, off"),
    ({"rules": {FAKE_REDACTION: "off"}}, "fake-redaction always block"),
    ({"rules": ["ssn"]}, "profile rules: must be an object"),
    ({"extra": 1}, "unknown field(s) extra"),
])
def test_invalid_profiles_name_the_field(changes: dict, message: str) -> None:
    with pytest.raises(InvalidProfile) as caught:
        load_profile(_profile(**changes))
    assert message in str(caught.value)


def test_malformed_files_are_refused() -> None:
    for data in (b"\xff\xfe", b"[]", b'{"id": "a", "id": "b"}', b"{" * 10, b" " * (64 * 1024 + 1)):
        with pytest.raises(InvalidProfile):
            load_profile(data)


def test_a_profile_is_immutable_and_round_trips() -> None:
    profile = load_profile(_profile())
    with pytest.raises(TypeError):
        profile.levels["ssn"] = "off"  # type: ignore[index]
    assert load_profile(json.dumps(profile.to_json()).encode()) == Profile(
        id="example-clinic", version=3, levels={"person-name": "warn", "zip-code": "off"})


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="carebridge")
    cli.add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    return args.run(args, {})


def test_inspect_applies_the_profile(tmp_path: Path, capsys) -> None:
    document, profile = tmp_path / "s.pdf", tmp_path / "profile.json"
    document.write_bytes(pdfgen.summary(LINES))
    profile.write_bytes(_profile(rules={"person-name": "warn", "zip-code": "off", "ssn": "warn"}))
    assert _main(["inspect", str(document), "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "no findings block sending" in out and "profile example-clinic v3:" in out
    assert "warning  page 1   person-name" in out and "1 finding(s) of rules the profile turns off" in out
    assert _main(["inspect", str(document), "--profile", str(profile), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == {"id": "example-clinic", "version": 3}
    assert {(f["rule"], f["action"]) for f in report["findings"]} == {
        ("person-name", "warn"), ("zip-code", "off"), ("ssn", "warn")}
    profile.write_bytes(_profile(rules={"ssn": "sometimes"}))
    assert _main(["inspect", str(document), "--profile", str(profile)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ssn must be one of block, warn, off" in err
