"""The `admin link-key rotate` and `admin purge` verbs, on a deployment folder, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carebridge.gateway.cli import main


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_link_key_rotation_keeps_the_old_key_and_is_logged(tmp_path: Path, capsys) -> None:
    data = str(tmp_path / "var")
    assert run(capsys, "admin", "init", "--data", data)[0] == 0
    code, out, _ = run(capsys, "admin", "link-key", "rotate", "--data", data, "--json")
    assert code == 0
    first = json.loads(out)["kid"]
    code, out, _ = run(capsys, "admin", "link-key", "rotate", "--data", data, "--json")
    second = json.loads(out)["kid"]
    keys = Path(data) / "keys" / "links"
    assert first != second and (keys / f"{first}.pem").exists() and (keys / f"{second}.pem").exists()
    assert (keys / "current").read_text().strip() == second
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in keys.glob("*.pem"))
    code, out, _ = run(capsys, "admin", "verify-log", "--data", data, "--json")
    assert code == 0 and json.loads(out)["entries_verified"] >= 2  # both rotations are log entries


def test_purge_verb_runs_one_pass(tmp_path: Path, capsys) -> None:
    assert run(capsys, "admin", "init", "--data", str(tmp_path / "var"))[0] == 0
    code, out, err = run(capsys, "admin", "purge", "--data", str(tmp_path / "var"), "--json")
    assert code == 0, err
    assert json.loads(out) == {"purged": 0, "held": 0}


@pytest.mark.parametrize("verb", [["org", "create", "Test Clinic", "--kind", "clinic"], ["purge"], ["migrate"],
                                  ["verify-log"], ["link-key", "rotate"],
                                  ["user", "create", "x@example.test", "--org", "X", "--role", "uploader"]])
def test_only_init_creates_a_deployment(tmp_path: Path, capsys, verb: list[str]) -> None:
    data = tmp_path / "not-a-deployment"
    with pytest.raises(SystemExit) as stopped:
        main(["admin", *verb, "--data", str(data)])
    message = str(stopped.value)
    assert "no deployment at" in message and str(data.resolve()) in message and "admin init" in message
    assert not data.exists()  # nothing was created there


def test_org_totp_setting_is_stored_and_logged(tmp_path: Path, capsys) -> None:
    data = str(tmp_path / "var")
    assert run(capsys, "admin", "init", "--data", data)[0] == 0
    assert run(capsys, "admin", "org", "create", "Glow Test Spa", "--kind", "spa", "--data", data)[0] == 0
    code, out, _ = run(capsys, "admin", "org", "totp", "Glow Test Spa", "optional", "--data", data, "--json")
    assert code == 0 and json.loads(out) == {"org": "Glow Test Spa", "recipient_totp": "optional"}
    from carebridge.gateway.server.app import open_store
    from carebridge.gateway.server.settings import load

    store = open_store(load(overrides={"data_dir": Path(data)}))
    try:
        org = store.query_sync(lambda db: db.identity.find_org("Glow Test Spa"))
        assert store.query_sync(lambda db: db.accounts.recipient_totp(org.id)) is False
    finally:
        store.close()
    code, out, _ = run(capsys, "admin", "verify-log", "--data", data, "--json")
    assert code == 0
    with pytest.raises(SystemExit, match="no organisation named"):
        main(["admin", "org", "totp", "No Such Spa", "required", "--data", data])
