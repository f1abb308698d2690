"""Link-key mode: a document for a spa user without registered keys, opened by a key in the link.

Sending (``carebridge send --link-key``, in :func:`.transfer.send`): each recipient gets a one-time age
X25519 identity; the document and its metadata are encrypted to those and to
the sender, the upload goes as usual, then the sender issues one link per
recipient and this module appends the identity as the URL *fragment*:
``https://gw/l/<token>#AGE-SECRET-KEY-1…``. Browsers and HTTP clients never
send a fragment, so the key never reaches the gateway, its logs or a proxy.
The sender passes each link to its recipient out of band; whoever has the
link has the document, as with any bearer link, until it expires or is used.

Passphrase mode (``send --passphrase``) encrypts to age's scrypt recipient
instead, alone in the file as the spec requires (so not even to the sender);
the links carry no key and the passphrase travels out of band.

Fetching (``carebridge fetch --link URL``): :func:`fetch_link` reads what the
link opens (spending nothing), checks the manifest's signature and the meta
ciphertext, claims the link (one use) and decrypts with the key from the
fragment, or the passphrase. Without an account the sender's key can only be checked against
the manifest itself; with a token (a sign-in link) the directory is asked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ...crypto import age
from ...crypto.errors import CryptoError
from ...crypto.manifest import PASSPHRASE_RECIPIENT, verify_manifest
from ...crypto.signing import VerifyKey
from .api import Client, Progress
from .transfer import TransferError, _HashingWriter, _safe_name

__all__ = ["LinkError", "LinkFetched", "fetch_link", "parse_link"]


class LinkError(TransferError):
    """The link cannot be used as given; the message says why (never the key)."""


@dataclass(frozen=True)
class ParsedLink:
    base_url: str
    token: str
    identity: age.X25519Identity | None  # from the fragment, when the link carries a key


@dataclass(frozen=True)
class LinkFetched:
    document_id: str
    path: Path
    name: str
    size: int
    sender_id: str


def parse_link(url: str) -> ParsedLink:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or "/l/" not in parts.path:
        raise LinkError("not a carebridge link (https://HOST/l/TOKEN#KEY)")
    prefix, _, token = parts.path.rpartition("/l/")
    if not token or "/" in token:
        raise LinkError("the link has no token")
    identity = None
    if parts.fragment:
        try:
            identity = age.X25519Identity.parse(parts.fragment)
        except CryptoError:
            raise LinkError("the part after # is not an age identity (was the link cut short?)") from None
    return ParsedLink(f"{parts.scheme}://{parts.netloc}{prefix}", token, identity)


async def fetch_link(client: Client, link: ParsedLink, *, output: Path | None, passphrase: str | None = None,
                     progress: Progress | None = None, purpose: str | None = None) -> LinkFetched:
    """Verify, claim (one use) and decrypt what *link* opens; refuses anything that does not verify.

    The key is the link's fragment, or, for a passphrase document, *passphrase*.
    """
    identity = link.identity or (age.ScryptIdentity(passphrase) if passphrase else None)
    if identity is None:
        raise LinkError("this link carries no key: give the document's passphrase, or fetch with your key file")
    info = await client.link_info(link.token)
    manifest = _checked_manifest(info, identity)
    try:
        meta = json.loads(age.decrypt_bytes(base64.b64decode(info["meta"]), [identity]))
    except CryptoError:
        raise LinkError("the document does not open with this key or passphrase") from None
    target = output or Path(_safe_name(meta["name"]))
    if output is None and target.exists():  # before the claim: a refusal here spends no use
        raise LinkError(f"{target} exists; choose another name with -o")
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".carebridge-", suffix=".part",
                                     delete=False) as sealed:
        try:
            sha = await client.claim_link(link.token, sealed, progress, purpose=purpose)
            sealed.flush()
            if sha != manifest.content.sha256:
                raise LinkError("the ciphertext does not match the manifest (SHA-256)")
            _decrypt(Path(sealed.name), target, identity, meta)
        finally:
            os.unlink(sealed.name)
    return LinkFetched(manifest.document_id, target, meta["name"], meta["size"], manifest.sender.user_id)


def _checked_manifest(info: dict, identity):
    wire = base64.b64decode(info["manifest"])
    try:
        claimed = json.loads(wire)["manifest"]["sender"]["signing_key"]
        manifest = verify_manifest(wire, VerifyKey.parse(claimed))
    except (CryptoError, ValueError, KeyError, TypeError):
        raise LinkError("the document's manifest does not verify") from None
    if manifest.document_id != info.get("document_id"):
        raise LinkError("the manifest is for another document")
    mine = PASSPHRASE_RECIPIENT if isinstance(identity, age.ScryptIdentity) else str(identity.recipient)
    if mine not in {r.age_recipient for r in manifest.recipients}:
        raise LinkError("the document is not encrypted to this link's key or a passphrase")
    if hashlib.sha256(base64.b64decode(info["meta"])).hexdigest() != manifest.meta.sha256:
        raise LinkError("the metadata does not match the manifest")
    return manifest


def _decrypt(sealed: Path, target: Path, identity, meta: dict) -> None:
    digest = hashlib.sha256()
    fd, plain = tempfile.mkstemp(dir=target.parent, prefix=".carebridge-", suffix=".plain")
    try:
        with open(sealed, "rb") as src, os.fdopen(fd, "wb") as dst:
            age.decrypt(src, _HashingWriter(dst, digest), [identity])
        if digest.hexdigest() != meta["sha256"]:
            raise LinkError("the decrypted document does not match its metadata")
        os.replace(plain, target)
    except CryptoError:
        raise LinkError("the document does not decrypt with this link's key or passphrase") from None
    finally:
        if os.path.exists(plain):
            os.unlink(plain)
