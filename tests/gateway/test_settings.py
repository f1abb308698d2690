"""Server settings: defaults, TOML file, CAREBRIDGE_* variables, errors that name the setting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from carebridge.gateway.server.settings import Settings, SettingsError, load


def test_defaults_are_the_embedded_deployment() -> None:
    s = load()
    assert (s.host, s.port, s.blob_store, s.data_dir) == ("127.0.0.1", 8080, "folder", Path("var"))
    assert s.effective_database_url.startswith("sqlite:///") and s.effective_database_url.endswith(
        "var/carebridge.db")
    assert s.default_document_lifetime == timedelta(days=7)


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('port = 9000\nhost = "127.0.0.2"\nmax_document_lifetime = 86400\n'
                      'default_document_lifetime = 3600\n')
    s = load(config_file=config, env={"CAREBRIDGE_PORT": "9100", "UNRELATED": "x"},
             overrides={"host": None})
    assert (s.port, s.host) == (9100, "127.0.0.2")
    assert s.max_document_lifetime == timedelta(days=1)
    assert load(config_file=config, overrides={"port": 9200}).port == 9200


@pytest.mark.parametrize("env, name", [
    ({"CAREBRIDGE_PORT": "eighty"}, "port"),
    ({"CAREBRIDGE_PORT": "70000"}, "port"),
    ({"CAREBRIDGE_HOST": "example.com"}, "host"),
    ({"CAREBRIDGE_BLOB_STORE": "tape"}, "blob_store"),
    ({"CAREBRIDGE_BLOB_STORE": "s3"}, "s3_bucket"),
    ({"CAREBRIDGE_DATABASE_URL": "mysql://x/y"}, "database_url"),
    ({"CAREBRIDGE_DATABASE_URL": "::nonsense::"}, "database_url"),
    ({"CAREBRIDGE_TOKEN_LIFETIME": "-5"}, "token_lifetime"),
    ({"CAREBRIDGE_DEFAULT_DOCUMENT_LIFETIME": "99999999"}, "default_document_lifetime"),
    ({"CAREBRIDGE_LOG_ORIGIN": "has space"}, "log_origin"),
    ({"CAREBRIDGE_ACCEL_REDIRECT": "/_carebridge"}, "accel_redirect"),
    ({"CAREBRIDGE_ACCEL_REDIRECT": "/../blobs/"}, "accel_redirect"),
    ({"CAREBRIDGE_ACCEL_REDIRECT": "_carebridge/"}, "accel_redirect"),
    ({"CAREBRIDGE_ACCEL_PRESIGN_SECONDS": "0"}, "accel_presign_seconds"),
    ({"CAREBRIDGE_ACCEL_PRESIGN_SECONDS": "3601"}, "accel_presign_seconds"),
])
def test_errors_name_the_setting(env: dict, name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(env=env)
    assert str(caught.value).startswith(name)


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="^prot: unknown setting"):
        load(config_file=config)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "b.toml"
    broken.write_text("port = \n")
    with pytest.raises(SettingsError, match="config file"):
        load(config_file=broken)
    with pytest.raises(SettingsError, match="config file"):
        load(config_file=tmp_path / "missing.toml")


def test_secrets_stay_out_of_repr() -> None:
    s = load(env={"CAREBRIDGE_S3_SECRET_ACCESS_KEY": "sekrit-value", "CAREBRIDGE_S3_BUCKET": "b",
                  "CAREBRIDGE_BLOB_STORE": "s3"})
    assert s.s3_secret_access_key == "sekrit-value"
    assert "sekrit" not in repr(s)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


def test_accel_redirect_is_off_unless_set() -> None:
    assert load().accel_redirect == ""  # the gateway sends the bytes itself
    assert load(env={"CAREBRIDGE_ACCEL_REDIRECT": "/_carebridge/"}).accel_redirect == "/_carebridge/"


def test_trusted_proxies_setting_is_checked() -> None:
    assert len(load(overrides={"trusted_proxies": "127.0.0.1, 10.0.0.0/8"}).trusted_proxy_networks) == 2
    with pytest.raises(SettingsError, match="trusted_proxies"):
        load(overrides={"trusted_proxies": "10.0.0.0/33"})


@pytest.mark.parametrize(("overrides", "named"), [
    ({"link_max_lifetime": 10**9}, "link_max_lifetime"),
    ({"max_document_lifetime": 400 * 86400, "default_document_lifetime": 86400}, "max_document_lifetime"),
    ({"max_total_downloads": 10**12}, "max_total_downloads"),
])
def test_policy_ceilings_are_checked_at_load_and_named(overrides: dict, named: str) -> None:
    # Caught at start, not as a failure of every upload later.
    with pytest.raises(SettingsError, match=f"^{named}: "):
        load(overrides=overrides)

