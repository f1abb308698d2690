"""Sending and fetching documents: the client half of promises 1 to 3.

``send``: resolve the recipients' registered keys, encrypt the document and
its metadata (file name, type, size, SHA-256, note) to them and to yourself,
sign the manifest that binds both ciphertexts, the recipients and the
policy, and stream the upload. ``fetch``: download, check the manifest
against the sender's registered key and both ciphertexts against the
manifest, then decrypt — refusing anything that does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import mimetypes
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ...crypto import age
from ...crypto.canonical import canonical_json
from ...crypto.errors import CryptoError
from ...crypto.keyfile import UserKeys
from ...crypto.manifest import (
    CiphertextDigest,
    Manifest,
    ManifestRecipient,
    Sender,
    policy_digest,
    sign_manifest,
    verify_manifest,
)
from ...crypto.signing import VerifyKey
from .api import Client, Progress
from .transparency import KeyNotLogged, check_published, log_verifier

MAX_META_BYTES = 16 * 1024  # the plaintext metadata object
MAX_NOTE_CHARS = 2000


class TransferError(Exception):
    """A send or fetch that must not go on; the message says why."""


@dataclass(frozen=True)
class SendOptions:
    expires_in: timedelta | None = None
    max_downloads: int | None = None
    note: str = ""
    #: The log's verifier key to trust (C2SP vkey); None: the gateway's, first use.
    log_verifier: str | None = None


async def resolve_recipients(client: Client, names: list[str]) -> list[dict]:
    """Users (with active keys) for e-mail addresses and ``org:NAME`` entries."""
    found: dict[str, dict] = {}
    for name in names:
        users = (await client.directory(org=name[4:]) if name.startswith("org:")
                 else await client.directory(email=name))
        users = [u for u in users if u["role"] == "recipient"]
        if not users:
            raise TransferError(f"{name}: no recipient found")
        for user in users:
            if user["keys"] is None:
                raise TransferError(f"{user['email']} has not registered keys yet")
            found[user["id"]] = user
    return list(found.values())


def _meta(path: Path, plaintext_sha256: str, size: int, note: str) -> bytes:
    if len(note) > MAX_NOTE_CHARS:
        raise TransferError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    meta = canonical_json({"content_type": kind, "name": path.name, "note": note,
                           "sha256": plaintext_sha256, "size": size, "version": 1})
    if len(meta) > MAX_META_BYTES:
        raise TransferError("the file name is too long")
    return meta


def _encrypt_file(src: Path, dst: Path, recipients: list) -> tuple[str, int, str, int]:
    """Encrypt *src* into *dst*; returns (plain sha256, plain size, cipher sha256, cipher size)."""
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    with open(src, "rb") as raw, open(dst, "wb") as out:
        reader = _HashingReader(raw, plain_hash)
        writer = _HashingWriter(out, cipher_hash)
        age.encrypt(reader, writer, recipients)
    return plain_hash.hexdigest(), reader.count, cipher_hash.hexdigest(), writer.count


async def send(client: Client, keys: UserKeys, path: Path, to: list[str], options: SendOptions,
               *, progress: Callable[[int], Progress] | None = None) -> dict:
    """Encrypt, sign and upload *path*; returns the gateway's answer (id, expires_at)."""
    me = await client.me()
    if me["keys"] is None or me["keys"]["age_recipient"] != keys.recipient:
        raise TransferError("your key file is not your registered key: run `carebridge keys register`")
    users = await resolve_recipients(client, to)
    try:
        verifier, origin = await log_verifier(client, options.log_verifier)
        for user in users:
            await check_published(client, user, verifier, origin)
    except KeyNotLogged as exc:
        raise TransferError(f"refusing to encrypt: {exc}") from None
    named = [(u["id"], u["keys"]["age_recipient"]) for u in users] + [(me["id"], keys.recipient)]
    recipients = [age.parse_recipient(r) for _, r in named]
    if len({r.post_quantum for r in recipients}) > 1:
        raise TransferError("some recipients have post-quantum keys and some do not;"
                            " one file cannot mix them (send them separately)")
    with tempfile.TemporaryDirectory(prefix="carebridge-send-") as work:
        sealed = Path(work) / "content.age"
        plain_sha, size, cipher_sha, cipher_size = _encrypt_file(path, sealed, recipients)
        meta = age.encrypt_bytes(_meta(path, plain_sha, size, options.note), recipients)
        policy = _policy([u["id"] for u in users], options)
        manifest = Manifest(
            document_id="doc_" + secrets.token_urlsafe(16),
            sender=Sender(me["id"], keys.verify_key),
            recipients=tuple(ManifestRecipient(uid, r) for uid, r in named),
            content=CiphertextDigest(cipher_sha, cipher_size),
            meta=CiphertextDigest(hashlib.sha256(meta).hexdigest(), len(meta)),
            created_at=datetime.now(timezone.utc).replace(microsecond=0),
            policy_digest=policy_digest(policy))
        return await client.upload(manifest=sign_manifest(manifest, keys.signing_key),
                                   policy=canonical_json(policy), meta=meta, content=sealed,
                                   progress=progress(cipher_size) if progress else None)


def _policy(recipient_ids: list[str], options: SendOptions) -> dict:
    policy: dict = {"version": 1, "recipients": sorted(recipient_ids)}
    if options.expires_in is not None:
        expires = datetime.now(timezone.utc).replace(microsecond=0) + options.expires_in
        policy["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    if options.max_downloads is not None:
        policy["max_downloads"] = options.max_downloads
    return policy


@dataclass(frozen=True)
class Fetched:
    document_id: str
    path: Path
    name: str
    content_type: str
    size: int
    sender_id: str
    note: str


async def verified_manifest(client: Client, info: dict) -> Manifest:
    """The document's manifest, checked against a key its sender registered."""
    data = base64.b64decode(info["manifest"])
    claimed = json.loads(data)["manifest"]["sender"]
    if claimed.get("user_id") != info["sender_id"]:
        raise TransferError("the manifest names another sender than the gateway does")
    history = await client.key_history(info["sender_id"])
    registered = {k["verify_key"] for k in history}
    if claimed.get("signing_key") not in registered:
        raise TransferError("the manifest is signed by a key its sender never registered")
    try:
        return verify_manifest(data, VerifyKey.parse(claimed["signing_key"]))
    except CryptoError as exc:
        raise TransferError(f"the manifest does not verify: {exc}") from None


async def fetch(client: Client, keys: UserKeys, doc_id: str, *, output: Path | None, raw: bool,
                progress: Callable[[int], Progress] | None = None) -> Fetched:
    info = await client.document(doc_id)
    manifest = await verified_manifest(client, info)
    if manifest.document_id != doc_id:
        raise TransferError("the manifest is for another document")
    if keys.recipient not in {r.age_recipient for r in manifest.recipients}:
        raise TransferError("this document is not encrypted to your key")
    meta_ct = base64.b64decode(info["meta"])
    if hashlib.sha256(meta_ct).hexdigest() != manifest.meta.sha256:
        raise TransferError("the metadata does not match the manifest")
    meta = json.loads(age.decrypt_bytes(meta_ct, [keys.identity]))
    target = output or Path(f"{doc_id}.age" if raw else _safe_name(meta["name"]))
    if output is None and target.exists():
        raise TransferError(f"{target} exists; choose another name with -o")
    folder = target.parent
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".carebridge-", suffix=".part", delete=False) as tmp:
        try:
            sha = await client.download(doc_id, tmp, progress(manifest.content.size) if progress else None)
            tmp.flush()
            if sha != manifest.content.sha256:
                raise TransferError("the ciphertext does not match the manifest (SHA-256)")
            final = tmp.name if raw else _decrypt_to_temp(Path(tmp.name), folder, keys, meta)
            os.replace(final, target)
        finally:
            if os.path.exists(tmp.name):  # the ciphertext, unless it became the --raw output
                os.unlink(tmp.name)
    return Fetched(doc_id, target, meta["name"], meta["content_type"], meta["size"],
                   manifest.sender.user_id, meta.get("note", ""))


def _decrypt_to_temp(sealed: Path, folder: Path, keys: UserKeys, meta: dict) -> str:
    digest = hashlib.sha256()
    fd, plain = tempfile.mkstemp(dir=folder, prefix=".carebridge-", suffix=".plain")
    try:
        with open(sealed, "rb") as src, os.fdopen(fd, "wb") as out:
            age.decrypt(src, _HashingWriter(out, digest), [keys.identity])
        if digest.hexdigest() != meta["sha256"]:
            raise TransferError("the decrypted document does not match its recorded SHA-256")
        return plain
    except BaseException:
        os.unlink(plain)
        raise


def _safe_name(name: str) -> str:
    """The sender's file name, reduced to a plain name in the current folder."""
    base = os.path.basename(name.replace("\\", "/")).strip().lstrip(".")
    cleaned = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*')
    return cleaned[:200] or "document"


class _HashingReader(io.RawIOBase):
    def __init__(self, src, digest) -> None:
        self._src, self._digest, self.count = src, digest, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._digest.update(data)
        self.count += len(data)
        return data


class _HashingWriter:
    def __init__(self, dst, digest) -> None:
        self._dst, self._digest, self.count = dst, digest, 0

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self.count += len(data)
        return self._dst.write(data)
