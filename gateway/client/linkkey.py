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
fragment, the passphrase, or (a sign-in link to a recipient with registered
keys, sent as usual) the recipient's own key file. Without an account the
sender's key can only be checked against the manifest itself; signed in
(a sign-in link), the sender's registered keys are asked too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ...crypto import age
from ...crypto.errors import CryptoError
from ...crypto.keyfile import UserKeys
from ...crypto.manifest import PASSPHRASE_RECIPIENT, Manifest, verify_manifest
from ...crypto.signing import VerifyKey
from .api import Client, Progress
from .progress import QUIET, Meter
from .transfer import TransferError, _HashingWriter, _safe_name

__all__ = ["LinkError", "LinkFetched", "LinkKeys", "fetch_link", "parse_link"]


class LinkError(TransferError):
    """The link cannot be used as given; the message says why (never the key)."""


@dataclass(frozen=True)
class ParsedLink:
    base_url: str
    token: str
    identity: age.X25519Identity | None  # from the fragment, when the link carries a key


@dataclass(frozen=True)
class LinkKeys:
    """What may open a link without a key in it, asked for only once the manifest shows which one.

    Each is a callable so that nobody is prompted for a passphrase the
    document does not use.
    """

    #: A passphrase document (``send --passphrase``): the document's passphrase.
    passphrase: Callable[[], str] | None = None
    #: A document sent to your registered key (a sign-in link): your key file, opened.
    key_file: Callable[[], UserKeys] | None = None


@dataclass(frozen=True)
class LinkFetched:
    document_id: str
    path: Path
    name: str
    size: int
    sender_id: str
    note: str = ""


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


def link_id_of(url: str) -> str:
    """The link id (the token's ``jti`` claim) of a link URL, read without checking the signature.

    Only to name the link to the gateway (``link revoke URL``), which checks
    that the link is yours; nothing here trusts the claim.
    """
    token = parse_link(url).token
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        link_id = claims["jti"]
    except (IndexError, ValueError, KeyError, TypeError):
        raise LinkError("the link's token is malformed (was the link cut short?)") from None
    if not isinstance(link_id, str) or not link_id:
        raise LinkError("the link's token names no link id")
    return link_id


async def fetch_link(client: Client, link: ParsedLink, *, output: Path | None, keys: LinkKeys | None = None,
                     passphrase: str | None = None, progress: Meter = QUIET, purpose: str | None = None,
                     signed_in: bool = False) -> LinkFetched:
    """Verify, claim (one use) and decrypt what *link* opens; refuses anything that does not verify.

    The key is the link's fragment, else what the manifest names: a
    passphrase (*passphrase*, or asked of *keys*), or your key file (see
    :class:`LinkKeys`). *signed_in*: the client carries the recipient's
    token, so the sender's signing key is also checked against the keys the
    sender registered.
    """
    if keys is None:
        keys = LinkKeys(passphrase=(lambda: passphrase) if passphrase else None)
    info = await client.link_info(link.token)
    manifest = _checked_manifest(info)
    if signed_in:
        history = await client.key_history(manifest.sender.user_id)
        if manifest.sender.signing_key.encode() not in {k["verify_key"] for k in history}:
            raise LinkError("the manifest is signed by a key its sender never registered")
    identity = _identity(link, manifest, keys)
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
            sha = await client.claim_link(link.token, sealed, progress.step("downloading", manifest.content.size),
                                          purpose=purpose)
            sealed.flush()
            if sha != manifest.content.sha256:
                raise LinkError("the ciphertext does not match the manifest (SHA-256)")
            _decrypt(Path(sealed.name), target, identity, meta, progress.step("decrypting", meta["size"]))
        finally:
            progress.close()
            os.unlink(sealed.name)
    return LinkFetched(manifest.document_id, target, meta["name"], meta["size"], manifest.sender.user_id,
                       meta.get("note", ""))


def _checked_manifest(info: dict) -> Manifest:
    wire = base64.b64decode(info["manifest"])
    try:
        claimed = json.loads(wire)["manifest"]["sender"]["signing_key"]
        manifest = verify_manifest(wire, VerifyKey.parse(claimed))
    except (CryptoError, ValueError, KeyError, TypeError):
        raise LinkError("the document's manifest does not verify") from None
    if manifest.document_id != info.get("document_id"):
        raise LinkError("the manifest is for another document")
    if hashlib.sha256(base64.b64decode(info["meta"])).hexdigest() != manifest.meta.sha256:
        raise LinkError("the metadata does not match the manifest")
    return manifest


def _identity(link: ParsedLink, manifest: Manifest, keys: LinkKeys):
    """The identity that opens the document: the link's key, a passphrase, or your key file."""
    named = {r.age_recipient for r in manifest.recipients}
    if link.identity is not None:
        identity, mine = link.identity, str(link.identity.recipient)
    elif PASSPHRASE_RECIPIENT in named:
        if keys.passphrase is None:
            raise LinkError("this document opens with a passphrase the sender shares out of band")
        identity, mine = age.ScryptIdentity(keys.passphrase()), PASSPHRASE_RECIPIENT
    elif keys.key_file is not None:
        user_keys = keys.key_file()
        identity, mine = user_keys.identity, user_keys.recipient
    else:
        raise LinkError("this link opens with your own key file: set CAREBRIDGE_IDENTITY (and CAREBRIDGE_TOKEN)")
    if mine not in named:
        raise LinkError("the document is not encrypted to this link's key, a passphrase or your key file")
    return identity


def _decrypt(sealed: Path, target: Path, identity, meta: dict, progress: Progress) -> None:
    digest = hashlib.sha256()
    fd, plain = tempfile.mkstemp(dir=target.parent, prefix=".carebridge-", suffix=".plain")
    try:
        with open(sealed, "rb") as src, os.fdopen(fd, "wb") as dst:
            age.decrypt(src, _HashingWriter(dst, digest, progress), [identity])
        if digest.hexdigest() != meta["sha256"]:
            raise LinkError("the decrypted document does not match its metadata")
        os.replace(plain, target)
    except CryptoError:
        raise LinkError("the document does not decrypt with this link's key or passphrase") from None
    finally:
        if os.path.exists(plain):
            os.unlink(plain)
