"""Server settings: one frozen object, built in one place from file + environment.

Precedence, lowest to highest: defaults, the TOML file (``--config``), the
``CAREBRIDGE_*`` environment variables, command-line flags. Every value is
checked here; an error names the setting (its TOML key, or its variable).

With nothing configured, ``carebridge serve`` keeps everything under ``./var``:
``carebridge.db`` (SQLite, WAL), ``blobs/`` and ``keys/``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from carebridge.crypto.keyfile import MAX_KEY_FILE_SIZE
from carebridge.policies import PolicyLimits, PolicyValidationError
from carebridge.storage.db.engine import parse_url

ENV_PREFIX = "CAREBRIDGE_"
MAX_PRESIGN_SECONDS = 3600  # storage.blobs.s3's ceiling: a proxy fetches now, it keeps no link
_ACCEL_PREFIX = re.compile(r"/(?:[A-Za-z0-9_-]+/)+")  # nginx location prefix; no dots, no escapes
MIB = 1 << 20
MAX_WORKERS = 64  # gateway processes per `serve`: far past the cores of one machine
MIN_METRICS_TOKEN = 24  # a scrape token is a secret: long enough not to guess


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from outside. Defaults suit one machine."""

    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8080
    #: ``sqlite:///path`` or ``postgresql://…``; default: ``<data_dir>/carebridge.db``.
    database_url: str = ""
    #: ``folder`` (``<data_dir>/blobs``) or ``s3``.
    blob_store: str = "folder"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)
    #: Largest ``content`` ciphertext accepted (HTTP 413 above).
    max_upload_bytes: int = 2048 * MIB
    #: Largest ``meta`` ciphertext: a small JSON object, age-encrypted.
    max_meta_bytes: int = 64 * 1024
    #: Largest key file stored for a user (``PUT /api/v1/me/key-file``); clients open up to 64 KiB.
    max_key_file_bytes: int = MAX_KEY_FILE_SIZE
    #: Lifetime of a document when its policy names none, and the longest allowed.
    default_document_lifetime: timedelta = timedelta(days=7)
    max_document_lifetime: timedelta = timedelta(days=30)
    #: Lifetime of API tokens made by ``admin user create``.
    token_lifetime: timedelta = timedelta(days=90)
    #: Name of this log in checkpoints (C2SP origin line).
    log_origin: str = "carebridge.localhost/log"
    #: Seconds after which an unfinished upload or orphan blob is swept.
    sweep_after: timedelta = timedelta(hours=1)
    #: Sign a checkpoint of the log this often (seconds) when it grew, or after this many entries.
    checkpoint_interval: timedelta = timedelta(seconds=10)
    checkpoint_entries: int = 1000
    #: How long a signer that died holding the checkpoint lease keeps it (longer than a signing takes).
    checkpoint_lease: timedelta = timedelta(seconds=60)
    #: Where checkpoints are anchored: ``folder`` (``<data_dir>/anchors``) or ``s3``
    #: (``anchor_s3_bucket``, Object Lock in compliance mode, with the s3_* credentials).
    anchor: str = "folder"
    anchor_s3_bucket: str = ""
    anchor_retention: timedelta = timedelta(days=7 * 365)

    # -- policies v2: server-wide ceilings no document policy can exceed --------
    #: Downloads per document across all recipients, at most.
    max_total_downloads: int = 1000
    #: How long the ciphertext stays after a document expired or was revoked,
    #: when its policy names no retention, and the longest a policy may ask.
    default_retention: timedelta = timedelta(days=1)
    max_retention: timedelta = timedelta(days=90)
    #: Whether any policy may allow bearer links (whoever holds one gets the ciphertext).
    allow_bearer_links: bool = True

    # -- expiring links ---------------------------------------------------------
    #: Base URL of this gateway as recipients reach it (links' ``iss`` and ``aud``);
    #: default ``http://<host>:<port>``.
    public_url: str = ""
    #: Longest lifetime and most uses a policy may give a link.
    link_max_lifetime: timedelta = timedelta(days=7)
    link_max_uses: int = 10
    #: Link redemptions per client address per minute.
    link_claims_per_minute: int = 30

    #: Reverse proxies (comma-separated addresses or CIDR networks) whose
    #: ``X-Forwarded-For`` names the client: policies' networks, rate limits and the
    #: log then see the client, not the proxy. Empty: the peer is the client.
    trusted_proxies: str = ""
    #: Behind nginx: the prefix of its ``internal`` locations (``/_carebridge/``). A
    #: download, once decided, counted and logged, is answered with ``X-Accel-Redirect``
    #: to ``<prefix>blobs/<key>`` (folder blobs) or ``<prefix>s3/…`` (a presigned GET of
    #: that one object, valid ``accel_presign_seconds``) and nginx sends the bytes.
    #: Empty (the default): the gateway sends them itself. See docker/nginx/.
    accel_redirect: str = ""
    accel_presign_seconds: int = 30

    # -- abuse limits -----------------------------------------------------------
    #: Failed authentications per address and per account within
    #: ``auth_failure_window`` before a lockout of ``lockout_duration``.
    auth_failure_limit: int = 10
    auth_failure_window: timedelta = timedelta(minutes=5)
    lockout_duration: timedelta = timedelta(minutes=15)

    # -- sign-in for people (browser sessions) ----------------------------------
    #: A session ends after this long without a request, and this long after
    #: sign-in whatever happens (the idle and the absolute timeout).
    session_idle_timeout: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=12)
    #: How long an enrollment link (``admin user create`` / ``admin user enroll``) works.
    enrollment_lifetime: timedelta = timedelta(hours=72)

    # -- lifecycle --------------------------------------------------------------
    #: How often the purge job looks for expired and revoked documents.
    purge_interval: timedelta = timedelta(minutes=5)

    # -- notifications (off unless smtp_host is set) ----------------------------
    smtp_host: str = ""
    smtp_port: int = 587
    #: ``starttls`` (required, the default), ``tls`` (implicit, port 465) or
    #: ``none`` (loopback relays and tests only).
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    #: CA bundle (PEM) to verify the SMTP server with, instead of the system's.
    smtp_ca_file: str = ""
    mail_from: str = "carebridge@localhost"
    #: Attempts per message before it is given up (and logged); retries back off.
    mail_max_attempts: int = 8
    #: How often the mailer looks for mail to send.
    mail_interval: timedelta = timedelta(seconds=5)

    # -- operations -------------------------------------------------------------
    #: Gateway processes sharing the listening socket (``serve --workers``); more than one
    #: needs PostgreSQL (or SQLite on one machine) and a blob store they all reach.
    workers: int = 1
    #: On SIGTERM: stop accepting, let requests in flight finish for this long, then cut them.
    shutdown_grace: timedelta = timedelta(seconds=30)
    #: ``text`` (one line per record) or ``json`` (one JSON object per line).
    log_format: str = "text"
    #: Bearer token for ``GET /metrics``; empty (the default) turns the endpoint off.
    metrics_token: str = field(default="", repr=False)
    #: How long each ``/readyz`` probe (database, blob store, signer's anchor) may take.
    readyz_timeout: timedelta = timedelta(seconds=2)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'carebridge.db').resolve()}"

    @functools.cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return _networks(self.trusted_proxies)

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @functools.cached_property
    def policy_limits(self) -> PolicyLimits:
        """The ceilings every document policy is checked against; built once, checked by :func:`load`."""
        return PolicyLimits(
            default_lifetime=self.default_document_lifetime, max_lifetime=self.max_document_lifetime,
            max_total_downloads=self.max_total_downloads, default_retention=self.default_retention,
            max_retention=self.max_retention, link_max_lifetime=self.link_max_lifetime,
            link_max_uses=self.link_max_uses, allow_bearer_links=self.allow_bearer_links)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"


_DURATIONS = {"default_document_lifetime", "max_document_lifetime", "token_lifetime", "sweep_after",
              "checkpoint_interval", "checkpoint_lease", "anchor_retention", "default_retention", "max_retention",
              "link_max_lifetime", "auth_failure_window", "lockout_duration", "purge_interval",
              "mail_interval", "session_idle_timeout", "session_lifetime", "enrollment_lifetime",
              "shutdown_grace", "readyz_timeout"}
# PolicyLimits fields whose setting has another name.
_LIMIT_SETTINGS = {"default_lifetime": "default_document_lifetime", "max_lifetime": "max_document_lifetime"}
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def load(*, config_file: Path | None = None, env: Mapping[str, str] = {},
         overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build and check the settings; raises SettingsError naming the bad setting."""
    raw: dict[str, Any] = {}
    if config_file is not None:
        raw.update(_read_toml(config_file))
    raw.update(_from_env(env))
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = replace(Settings(), **{k: _convert(k, v) for k, v in raw.items()})
    _check(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: {exc}") from None
    known = {f.name for f in fields(Settings)}
    for key in data:
        if key not in known:
            raise SettingsError(f"{key}: unknown setting in {path}")
    return data


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    known = {f.name for f in fields(Settings)}
    out = {}
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):].lower() in known:
            out[name[len(ENV_PREFIX):].lower()] = value
    return out


def _convert(key: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[key]
    try:
        if key in _DURATIONS:
            seconds = int(value)
            if seconds <= 0:
                raise ValueError
            return timedelta(seconds=seconds)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _BOOLEANS:
                return _BOOLEANS[value.lower()]
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "Path":
            return Path(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise SettingsError(f"{key}: invalid value for a {kind} setting"
                             + (" (seconds, > 0)" if key in _DURATIONS else "")) from None


def _check(s: Settings) -> None:
    if not 0 <= s.port <= 65535:
        raise SettingsError("port: must be 0..65535")
    try:
        ipaddress.ip_address(s.host)
    except ValueError:
        if s.host != "localhost":
            raise SettingsError("host: must be an IP address or localhost") from None
    if s.blob_store not in ("folder", "s3"):
        raise SettingsError("blob_store: must be 'folder' or 's3'")
    if s.blob_store == "s3" and not s.s3_bucket:
        raise SettingsError("s3_bucket: required when blob_store is 's3'")
    if s.anchor not in ("folder", "s3"):
        raise SettingsError("anchor: must be 'folder' or 's3'")
    if s.anchor == "s3" and not s.anchor_s3_bucket:
        raise SettingsError("anchor_s3_bucket: required when anchor is 's3'")
    if s.checkpoint_entries <= 0:
        raise SettingsError("checkpoint_entries: must be positive")
    if s.max_upload_bytes <= 0 or s.max_meta_bytes <= 0:
        raise SettingsError("max_upload_bytes / max_meta_bytes: must be positive")
    if not 1 <= s.max_key_file_bytes <= MAX_KEY_FILE_SIZE:
        raise SettingsError(f"max_key_file_bytes: must be 1..{MAX_KEY_FILE_SIZE} (what clients open)")
    if s.default_document_lifetime > s.max_document_lifetime:
        raise SettingsError("default_document_lifetime: longer than max_document_lifetime")
    for name in ("max_total_downloads", "link_max_uses", "link_claims_per_minute", "auth_failure_limit",
                 "mail_max_attempts"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name}: must be positive")
    if s.default_retention > s.max_retention:
        raise SettingsError("default_retention: longer than max_retention")
    if s.session_idle_timeout > s.session_lifetime:
        raise SettingsError("session_idle_timeout: longer than session_lifetime")
    if s.smtp_security not in ("starttls", "tls", "none"):
        raise SettingsError("smtp_security: must be 'starttls', 'tls' or 'none'")
    if not 1 <= s.workers <= MAX_WORKERS:
        raise SettingsError(f"workers: must be 1..{MAX_WORKERS}")
    if s.log_format not in ("text", "json"):
        raise SettingsError("log_format: must be 'text' or 'json'")
    if s.metrics_token and len(s.metrics_token) < MIN_METRICS_TOKEN:
        raise SettingsError(f"metrics_token: at least {MIN_METRICS_TOKEN} characters")
    if not 0 < s.smtp_port <= 65535:
        raise SettingsError("smtp_port: must be 1..65535")
    try:
        s.policy_limits
    except PolicyValidationError as exc:  # named as the setting, not the PolicyLimits field
        raise SettingsError(f"{_LIMIT_SETTINGS.get(exc.field, exc.field)}: {exc.problem}") from None
    try:
        _networks(s.trusted_proxies)
    except ValueError:
        raise SettingsError("trusted_proxies: comma-separated IP addresses or CIDR networks") from None
    if s.accel_redirect and not _ACCEL_PREFIX.fullmatch(s.accel_redirect):
        raise SettingsError("accel_redirect: a path like /_carebridge/ (starts and ends with '/')")
    if not 1 <= s.accel_presign_seconds <= MAX_PRESIGN_SECONDS:
        raise SettingsError(f"accel_presign_seconds: must be 1..{MAX_PRESIGN_SECONDS}")
    if s.public_url and not s.public_url.startswith(("https://", "http://")):
        raise SettingsError("public_url: must be an http(s) URL")
    if not s.log_origin or any(c.isspace() for c in s.log_origin):
        raise SettingsError("log_origin: a non-empty name without spaces")
    try:
        parse_url(s.effective_database_url)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())
