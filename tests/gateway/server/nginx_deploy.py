"""A real deployment behind nginx for tests and ``scripts/bench_scale.py``.

``carebridge serve`` processes (one data folder, one database), Debian's
nginx run unprivileged from a folder (``-p``; pid, logs and temp files
there) with ``docker/nginx/carebridge.conf.template`` filled in, a made-up
self-signed certificate for 127.0.0.1, and parties and documents made the
way the CLI makes them (age ciphertext, a signed manifest), with synthetic
names only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))
import nginx_conf  # noqa: E402  (scripts/ is not a package)

CAREBRIDGE = Path(sys.executable).with_name("carebridge")
START_TIMEOUT = 60.0  # seconds for a process to answer on a busy machine
ACCEL_PREFIX = "/_carebridge/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A made-up certificate for 127.0.0.1 (one day), PEM files ``tls.crt`` and ``tls.key``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "carebridge test proxy")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = folder / "tls.crt", folder / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    return crt, pem


def client_tls(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def _wait_port(port: int, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on {port} in {START_TIMEOUT} s")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update({f"CAREBRIDGE_{k.upper()}": v for k, v in settings.items()})
    return env


@contextlib.contextmanager
def gateways(data: Path, count: int, **settings: str) -> Iterator[list[int]]:
    """*count* ``carebridge serve`` processes on one data folder; yields their ports."""
    procs: list[subprocess.Popen] = []
    ports = [free_port() for _ in range(count)]
    try:
        for number, port in enumerate(ports):
            log = data.parent / f"gateway-{number}.log"
            with log.open("ab") as out:
                procs.append(subprocess.Popen(
                    [str(CAREBRIDGE), "serve", "--data", str(data), "--port", str(port)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=clean_env(**settings), cwd=data.parent))
            # one at a time: the first applies migrations and logs the web release
            _wait_health(port, procs[-1], log)
        yield ports
    finally:
        for proc in procs:
            _stop(proc)


def _wait_health(port: int, proc: subprocess.Popen, log: Path) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited ({proc.returncode}): {log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"gateway on {port} did not answer in {START_TIMEOUT} s")
        time.sleep(0.1)


@dataclass(frozen=True)
class Proxy:
    url: str
    port: int
    cert: Path
    run_dir: Path

    def tls(self) -> ssl.SSLContext:
        return client_tls(self.cert)


@contextlib.contextmanager
def nginx(run_dir: Path, *, gateway_ports: list[int], blobs_dir: Path, s3_endpoint: str = "http://127.0.0.1:9",
          max_body: str | None = None, web_dist: Path = REPO / "gateway" / "web" / "dist") -> Iterator[Proxy]:
    """Debian's nginx, unprivileged, on a free port in front of *gateway_ports*."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(run_dir)
    port = free_port()
    values = {"CB_RUN_DIR": str(run_dir), "CB_LISTEN": f"127.0.0.1:{port}", "CB_TLS_CERT": str(cert),
              "CB_TLS_KEY": str(key), "CB_GATEWAYS": nginx_conf.gateways([f"127.0.0.1:{p}" for p in gateway_ports]),
              "CB_WEB_DIST": str(web_dist), "CB_BLOBS_DIR": str(blobs_dir), "CB_S3_ENDPOINT": s3_endpoint}
    if max_body is not None:
        values["CB_MAX_BODY"] = max_body
    conf = run_dir / "nginx.conf"
    conf.write_text(nginx_conf.render(values))
    log = run_dir / "error.log"
    # "user" is only read when started as root: keep the workers as whoever runs us.
    user = [] if os.geteuid() else ["-g", "daemon off; user root;"]
    args = ["nginx", "-p", str(run_dir), "-c", str(conf), *(user or ["-g", "daemon off;"])]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        log.touch()
        _wait_port(port, proc, log, "nginx")
        yield Proxy(f"https://127.0.0.1:{port}", port, cert, run_dir)
    finally:
        _stop(proc, signal.SIGQUIT)  # graceful: finish what is in flight


# -- parties and documents ----------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    user_id: str
    token: str
    keys: object  # carebridge.crypto.keyfile.UserKeys


@dataclass(frozen=True)
class Parties:
    uploader: Party
    recipient: Party


def create_parties(settings) -> Parties:
    """A clinic and a spa with a referral, an uploader and a recipient (made-up names)."""
    from carebridge.crypto.keyfile import UserKeys
    from carebridge.gateway.server import admin
    from carebridge.gateway.server.app import open_store, prepare_data_dir

    prepare_data_dir(settings)
    store = open_store(settings)
    try:
        admin.init(store, settings, "admin@proxy.example.test")
        admin.create_org(store, "Proxy Test Clinic", "clinic")
        admin.create_org(store, "Proxy Test Spa", "spa")
        admin.add_referral(store, "Proxy Test Clinic", "Proxy Test Spa")
        up = admin.create_user(store, settings, "uploader@proxy.example.test", "Proxy Test Clinic", "uploader")
        rec = admin.create_user(store, settings, "recipient@proxy.example.test", "Proxy Test Spa", "recipient")
    finally:
        store.close()
    return Parties(Party(up.user.id, up.token, UserKeys.generate()),
                   Party(rec.user.id, rec.token, UserKeys.generate()))


async def register_keys(base: str, parties: Parties) -> None:
    from carebridge.crypto.registration import sign_registration
    from carebridge.gateway.client.api import Client

    for party in (parties.uploader, parties.recipient):
        statement = sign_registration(user_id=party.user_id, age_recipient=party.keys.recipient,
                                      key=party.keys.signing_key, now=datetime.now(UTC))
        async with Client(base, party.token) as api:
            await api.register_keys(statement)


def seal(plain: bytes, parties: Parties, out: Path) -> bytes:
    """*plain* age-encrypted to the recipient and the uploader, written to *out*; the ciphertext."""
    from carebridge.crypto import age

    buffer = io.BytesIO()
    age.encrypt(io.BytesIO(plain), buffer,
                [age.parse_recipient(p.keys.recipient) for p in (parties.recipient, parties.uploader)])
    out.write_bytes(buffer.getvalue())
    return buffer.getvalue()


async def upload(base: str, parties: Parties, content: Path, *, max_downloads: int = 100) -> str:
    """Upload the age file *content* as the uploader (manifest signed as send() signs it); its id."""
    from carebridge.crypto.canonical import canonical_json
    from carebridge.crypto.manifest import (
        CiphertextDigest,
        Manifest,
        ManifestRecipient,
        Sender,
        policy_digest,
        sign_manifest,
    )
    from carebridge.gateway.client.api import Client

    up, rec = parties.uploader, parties.recipient
    meta = seal_meta(parties)
    policy = {"version": 1, "recipients": [rec.user_id], "max_downloads": max_downloads}
    digest, size = _file_digest(content)
    manifest = Manifest(
        document_id="doc_" + secrets.token_urlsafe(16), sender=Sender(up.user_id, up.keys.verify_key),
        recipients=(ManifestRecipient(rec.user_id, rec.keys.recipient),
                    ManifestRecipient(up.user_id, up.keys.recipient)),
        content=CiphertextDigest(digest, size),
        meta=CiphertextDigest(hashlib.sha256(meta).hexdigest(), len(meta)),
        created_at=datetime.now(UTC).replace(microsecond=0), policy_digest=policy_digest(policy))
    async with Client(base, up.token) as api:
        answer = await api.upload(manifest=sign_manifest(manifest, up.keys.signing_key),
                                  policy=canonical_json(policy), meta=meta, content=content)
    return answer["id"]


def seal_meta(parties: Parties) -> bytes:
    from carebridge.crypto import age

    buffer = io.BytesIO()
    age.encrypt(io.BytesIO(b'{"name": "synthetic-summary.pdf"}'), buffer,
                [age.parse_recipient(p.keys.recipient) for p in (parties.recipient, parties.uploader)])
    return buffer.getvalue()


def _file_digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
