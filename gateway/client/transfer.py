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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ...crypto import age
from ...crypto.canonical import canonical_json
from ...crypto.errors import CryptoError
from ...crypto.keyfile import UserKeys
from ...crypto.manifest import (
    CiphertextDigest,
    Manifest,
    PASSPHRASE_RECIPIENT,
    ManifestRecipient,
    ProfileRef,
    Sender,
    policy_digest,
    sign_manifest,
    verify_manifest,
)
from ...crypto.signing import VerifyKey
from .api import Client, Progress
from .clearance import clear, clinic_profile
from .errors import TransferError
from .progress import QUIET, Meter
from .transparency import KeyNotLogged, check_latest, check_published, log_verifier

MAX_META_BYTES = 16 * 1024  # the plaintext metadata object
MAX_NOTE_CHARS = 2000


@dataclass(frozen=True)
class SendOptions:
    """The sender's policy (see carebridge.policies.policy for each field's meaning and bounds).

    Spans are relative to the send time; ``None`` leaves a field out (the
    server's default applies). Any field beyond ``expires_in`` and
    ``max_downloads`` (or an ``org:NAME`` recipient) makes the policy version 2.
    """

    expires_in: timedelta | None = None
    max_downloads: int | None = None
    note: str = ""
    #: The log's verifier key to trust (C2SP vkey); None: the gateway's, first use.
    log_verifier: str | None = None
    not_before_in: timedelta | None = None
    max_total_downloads: int | None = None
    networks: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    links: str | None = None  # "sign_in" or "bearer"
    link_lifetime: timedelta | None = None
    link_uses: int | None = None
    retention: timedelta | None = None
    legal_hold: bool = False
    #: The redaction gate: rules overridden by name, with one reason for all;
    #: plain text accepted (scanned like a PDF's text) only when allowed.
    allow_rules: tuple[str, ...] = ()
    override_reason: str | None = None
    allow_text: bool = False
    #: Link-key mode (see .linkkey): encrypt to a one-time key per recipient,
    #: then issue each a link of ``links`` mode whose fragment carries the key.
    link_key: bool = False
    #: Passphrase mode: encrypt to this passphrase alone (age scrypt), shared out of band.
    passphrase: str | None = field(default=None, repr=False)
    #: The referral case (its id or CB- reference) the document goes under, signed into the manifest.
    case: str | None = None
    #: Sends the bytes as they are, unsanitized and unscanned. For tests of
    #: the transport with synthetic bytes; never set by the CLI.
    unsafe_skip_redaction_gate: bool = False


@dataclass(frozen=True)
class Recipients:
    users: list[dict]
    #: The spa's org id when every recipient came from one ``org:NAME`` entry.
    spa: str | None = None


async def resolve_recipients(client: Client, names: list[str], *, keyless: bool = False) -> Recipients:
    """Users (with active keys) for e-mail addresses and ``org:NAME`` entries.

    ``org:NAME`` expands to that organisation's recipient users as the
    directory lists them now; the list is frozen into the policy.
    """
    found: dict[str, dict] = {}
    orgs: set[str] = set()
    for name in names:
        users = (await client.directory(org=name[4:]) if name.startswith("org:")
                 else await client.directory(email=name))
        users = [u for u in users if u["role"] == "recipient"]
        if not users:
            raise TransferError(f"{name}: no recipient found")
        if name.startswith("org:"):
            orgs.update(u["org_id"] for u in users)
        for user in users:
            if user["keys"] is None and not keyless:
                raise TransferError(f"{user['email']} has not registered keys yet")
            found[user["id"]] = user
    spa = None
    if len(orgs) == 1 and all(u["org_id"] in orgs for u in found.values()):
        spa = next(iter(orgs))
    return Recipients(list(found.values()), spa)


async def case_recipients(client: Client, case: dict, me: dict, to: list[str]) -> Recipients:
    """The case's people on the other side from *me*, with their active keys: a clinic
    person sends to the spa's people, a spa person (a follow-up report) to the clinic's.
    *to* (e-mail addresses) narrows them; naming anyone else is an error."""
    clinic = set(case.get("clinic_people", ()))
    mine_is_clinic = me["org_id"] == case["clinic_org_id"]
    others = [u for u in case["people"] if (u in clinic) != mine_is_clinic and u != me["id"]]
    if to:
        named = set()
        for email in to:
            found = [u for u in await client.directory(email=email) if u["id"] in others]
            if not found:
                raise TransferError(f"{email} is not one of the case's people on the other side")
            named.update(u["id"] for u in found)
        others = [u for u in others if u in named]
    if not others:
        raise TransferError("the case has nobody on the other side to send to")
    users = []
    for user_id in others:
        active = next((k for k in await client.key_history(user_id) if k["status"] == "active"), None)
        if active is None:
            raise TransferError(f"{user_id} of the case has not registered keys yet")
        users.append({"id": user_id, "email": user_id, "keys": active})
    return Recipients(users, None if not mine_is_clinic else case["spa_org_id"])


def _meta(path: Path, plaintext_sha256: str, size: int, note: str) -> bytes:
    if len(note) > MAX_NOTE_CHARS:
        raise TransferError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    meta = canonical_json({"content_type": kind, "name": path.name, "note": note,
                           "sha256": plaintext_sha256, "size": size, "version": 1})
    if len(meta) > MAX_META_BYTES:
        raise TransferError("the file name is too long")
    return meta


def _encrypt_file(src: Path, dst: Path, recipients: list,
                  progress: Progress | None = None) -> tuple[str, int, str, int]:
    """Encrypt *src* into *dst*; returns (plain sha256, plain size, cipher sha256, cipher size)."""
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    with open(src, "rb") as raw, open(dst, "wb") as out:
        reader = _HashingReader(raw, plain_hash, progress)
        writer = _HashingWriter(out, cipher_hash)
        age.encrypt(reader, writer, recipients)
    return plain_hash.hexdigest(), reader.count, cipher_hash.hexdigest(), writer.count


async def send(client: Client, keys: UserKeys, path: Path, to: list[str], options: SendOptions,
               *, progress: Meter = QUIET) -> dict:
    """Encrypt, sign and upload *path*; returns the gateway's answer (id, expires_at).

    *progress* is told each step (scanning, encrypting, uploading) and its bytes.
    """
    me = await client.me()
    if me["keys"] is None or me["keys"]["age_recipient"] != keys.recipient:
        raise TransferError("your key file is not your registered key: run `carebridge keys register`")
    keyless = options.link_key or options.passphrase is not None
    if keyless and options.links is None:
        raise TransferError("link-key and passphrase modes need a policy that allows links (--links)")
    case = await client.case(options.case) if options.case else None
    if case is not None and (me["org_id"] == case["spa_org_id"] or not to):
        if keyless:
            raise TransferError("under a case, documents go to the case's people's registered keys (no links)")
        resolved = await case_recipients(client, case, me, to)
    elif not to:
        raise TransferError("name at least one recipient (--to), or a case (--case)")
    else:
        resolved = await resolve_recipients(client, to, keyless=keyless)
    users = resolved.users
    named, recipients, fragments = await _addressing(client, me, keys, users, options)
    case_id = case["id"] if case else None
    with tempfile.TemporaryDirectory(prefix="carebridge-send-") as work:
        progress.step("scanning")
        profile = None if options.unsafe_skip_redaction_gate else await clinic_profile(client, me)
        cleared, overrides = await clear(path, Path(work), allow=options.allow_rules,
                                         reason=options.override_reason, allow_text=options.allow_text,
                                         unsafe_skip=options.unsafe_skip_redaction_gate, profile=profile)
        sealed = Path(work) / "content.age"
        encrypting = progress.step("encrypting", cleared.stat().st_size)
        plain_sha, size, cipher_sha, cipher_size = _encrypt_file(cleared, sealed, recipients, encrypting)
        meta = age.encrypt_bytes(_meta(path, plain_sha, size, options.note), recipients)
        policy = policy_json([u["id"] for u in users], options, spa=resolved.spa,
                             now=datetime.now(timezone.utc))
        manifest = Manifest(
            document_id="doc_" + secrets.token_urlsafe(16),
            sender=Sender(me["id"], keys.verify_key),
            recipients=tuple(ManifestRecipient(uid, r) for uid, r in named),
            content=CiphertextDigest(cipher_sha, cipher_size),
            meta=CiphertextDigest(hashlib.sha256(meta).hexdigest(), len(meta)),
            created_at=datetime.now(timezone.utc).replace(microsecond=0),
            policy_digest=policy_digest(policy), overrides=overrides,
            redaction_profile=ProfileRef(profile.id, profile.version) if profile else None,
            case_id=case_id)
        answer = await client.upload(manifest=sign_manifest(manifest, keys.signing_key),
                                     policy=canonical_json(policy), meta=meta, content=sealed,
                                     progress=progress.step("uploading", cipher_size))
        progress.close()
    # What was encrypted: the sanitized document, which the recipient's fetch reproduces.
    answer = {**answer, "sha256": plain_sha, "size": size, "overrides": [o.rule_id for o in overrides],
              "redaction_profile": profile.reference() if profile else None, "case_id": case_id}
    if fragments is not None:
        answer["links"] = await _key_links(client, answer["id"], users, fragments, options.links)
    return answer


async def _addressing(client: Client, me: dict, keys: UserKeys, users: list[dict],
                      options: SendOptions) -> tuple[list[tuple[str, str]], list, dict[str, str] | None]:
    """(user id, age recipient) pairs for the manifest, the age recipients, and link fragments.

    - registered keys (the default): each recipient's key, proven in the log, and yours;
    - link-key mode: a one-time identity per recipient, its secret the link's fragment;
    - passphrase mode: age scrypt alone in the file (not even yours), links without a key.
    """
    if options.passphrase is not None:
        named = [(u["id"], PASSPHRASE_RECIPIENT) for u in users]
        return named, [age.ScryptRecipient(options.passphrase)], {u["id"]: "" for u in users}
    if options.link_key:
        one_time = {u["id"]: age.X25519Identity.generate() for u in users}
        named = [(uid, str(identity.recipient)) for uid, identity in one_time.items()]
        fragments = {uid: "#" + identity.secret_string() for uid, identity in one_time.items()}
    else:
        try:
            verifier, origin = await log_verifier(client, options.log_verifier)
            for user in users:
                await check_published(client, user, verifier, origin)
                await check_latest(client, user)
        except KeyNotLogged as exc:
            raise TransferError(f"refusing to encrypt: {exc}") from None
        named, fragments = [(u["id"], u["keys"]["age_recipient"]) for u in users], None
    named.append((me["id"], keys.recipient))
    recipients = [age.parse_recipient(r) for _, r in named]
    if len({r.post_quantum for r in recipients}) > 1:
        raise TransferError("some recipients have post-quantum keys and some do not;"
                            " one file cannot mix them (send them separately)")
    return named, recipients, fragments


async def _key_links(client: Client, doc_id: str, users: list[dict], fragments: dict[str, str],
                     mode: str) -> list[dict]:
    """One link per recipient; a link-key mode link carries its key in the fragment (never sent)."""
    links = []
    for user in users:
        link = await client.issue_link(doc_id, user["id"], mode)
        links.append({"recipient": user["email"], "expires_at": link["expires_at"],
                      "url": link["url"] + fragments[user["id"]]})
    return links


def policy_json(recipient_ids: list[str], options: SendOptions, *, spa: str | None, now: datetime) -> dict:
    """The policy JSON for *options* sent at *now*: version 1 unless a version-2 field is used."""
    start = now.astimezone(timezone.utc).replace(microsecond=0)
    policy: dict = {"version": 1, "recipients": sorted(recipient_ids)}
    if options.expires_in is not None:
        policy["expires_at"] = policy_time(start + options.expires_in)
    if options.max_downloads is not None:
        policy["max_downloads"] = options.max_downloads
    v2 = {
        "spa": spa,
        "not_before": policy_time(start + options.not_before_in) if options.not_before_in is not None else None,
        "max_total_downloads": options.max_total_downloads,
        "networks": list(options.networks) or None,
        "purposes": sorted(set(options.purposes)) or None,
        "retention": _seconds(options.retention),
        "legal_hold": True if options.legal_hold else None,
    }
    if options.links is not None:
        v2["links"] = {"mode": options.links, "lifetime": _seconds(options.link_lifetime) or _DEFAULT_LINK_LIFETIME,
                       "uses": options.link_uses or 1}
    elif options.link_lifetime is not None or options.link_uses is not None:
        raise TransferError("--link-lifetime and --link-uses need --links sign_in or --links bearer")
    v2 = {k: v for k, v in v2.items() if v is not None}
    if v2:
        policy.update(v2, version=2)
    return policy


_DEFAULT_LINK_LIFETIME = 86400  # seconds: a link for today, unless the sender says otherwise


def policy_time(moment: datetime) -> str:
    """A time as policy JSON writes it: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(span: timedelta | None) -> int | None:
    return None if span is None else int(span.total_seconds())


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
                progress: Meter = QUIET, purpose: str | None = None) -> Fetched:
    """Download, verify and decrypt; *purpose* is sent as the purpose of use.

    *progress* is told each step (downloading, decrypting) and its bytes.
    """
    info = await client.document(doc_id, purpose=purpose)
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
            sha = await client.download(doc_id, tmp, progress.step("downloading", manifest.content.size),
                                        purpose=purpose)
            tmp.flush()
            if sha != manifest.content.sha256:
                raise TransferError("the ciphertext does not match the manifest (SHA-256)")
            final = tmp.name if raw else _decrypt_to_temp(Path(tmp.name), folder, keys, meta,
                                                          progress.step("decrypting", meta["size"]))
            os.replace(final, target)
        finally:
            progress.close()
            if os.path.exists(tmp.name):  # the ciphertext, unless it became the --raw output
                os.unlink(tmp.name)
    return Fetched(doc_id, target, meta["name"], meta["content_type"], meta["size"],
                   manifest.sender.user_id, meta.get("note", ""))


def _decrypt_to_temp(sealed: Path, folder: Path, keys: UserKeys, meta: dict, progress: Progress) -> str:
    digest = hashlib.sha256()
    fd, plain = tempfile.mkstemp(dir=folder, prefix=".carebridge-", suffix=".plain")
    try:
        with open(sealed, "rb") as src, os.fdopen(fd, "wb") as out:
            age.decrypt(src, _HashingWriter(out, digest, progress), [keys.identity])
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
    def __init__(self, src, digest, progress: Progress | None = None) -> None:
        self._src, self._digest, self.count, self._progress = src, digest, 0, progress

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._digest.update(data)
        self.count += len(data)
        if self._progress is not None:
            self._progress(len(data))
        return data


class _HashingWriter:
    def __init__(self, dst, digest, progress: Progress | None = None) -> None:
        self._dst, self._digest, self.count, self._progress = dst, digest, 0, progress

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self.count += len(data)
        if self._progress is not None:
            self._progress(len(data))
        return self._dst.write(data)
