"""``carebridge verify-web URL``: the web app a gateway serves is the release it put on the record.

A browser runs whatever JavaScript the gateway sends, so anyone can check,
from outside, that what is sent is what the access log says was released
(:mod:`carebridge.gateway.server.web` is the other half):

1. ``GET /api/v1/web/release``: the bundle's manifest, the ``web.release``
   log entry and a C2SP tlog-proof of it.
2. ``GET /app/<path>`` for every asset the manifest lists: each must hash
   to the manifest's SHA-256, and the root recomputed from the hashes of
   the bytes received (SHA-256 of the canonical JSON of the ``{path,
   sha256}`` list sorted by path) must be the manifest's root.
3. The entry must be a ``web.release`` allow entry whose object is that
   root, at the stated seq, and be included in a checkpoint signed by the
   log key the caller pinned (``--key`` or ``CAREBRIDGE_LOG_VERIFIER``;
   refused without one, like ``audit verify``).
4. A page (:data:`PAGE`, which needs no link) loads only released assets,
   each with its released SRI string, and has no inline script.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ...crypto import merkle, note, tlog_proof
from ...crypto.canonical import canonical_json
from ...crypto.errors import CryptoError
from ._terminal import CLIError
from .api import ApiError, Client, read_whole

if TYPE_CHECKING:
    import aiohttp

LOG_VERIFIER_ENV = "CAREBRIDGE_LOG_VERIFIER"
RELEASE_ACTION = "web.release"
MAX_ASSET_BYTES = 16 << 20  # the page budget is 200 KB gzipped; anything near this is not our bundle
PAGE = "/keys/new"  # a page of the web app anyone may open
MAX_PAGE_BYTES = 1 << 20  # a page shell is a few hundred bytes
_LOADS = re.compile(r'<(script|link)\b[^>]*?(?:src|href)="/app/([^"]+)"[^>]*?integrity="([^"]+)"')
_SCRIPT = re.compile(r"<script\b[^>]*>")
# An asset path: a file name, or one folder and a file name (Pyodide's runtime folder), as the
# gateway's own rule (gateway/server/web.py ASSET_PATH); never "..", never another place.
ASSET_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?")
MAX_ASSETS = 256  # a bundle has a handful of files; bounds the requests a hostile manifest can cause


class WebNotVerified(Exception):
    """What the gateway serves could not be shown to be its logged release; the message says why."""


@dataclass(frozen=True)
class Verified:
    root: str
    seq: int
    assets: int
    checkpoint_size: int


class _WebClient(Client):
    """The two public reads verify-web needs, with no token."""

    async def release(self) -> dict:
        return await self._json("GET", "/api/v1/web/release")

    async def page(self) -> str:
        response = await self._request("GET", PAGE)
        async with response:
            data = await _whole(response, MAX_PAGE_BYTES, "the page is larger than any web release's")
        return data.decode("utf-8", errors="replace")

    async def asset(self, path: str) -> bytes:
        response = await self._request("GET", f"/app/{path}")
        async with response:
            return await _whole(response, MAX_ASSET_BYTES, f"the asset {path} is larger than any web release")


async def _whole(response: aiohttp.ClientResponse, limit: int, too_large: str) -> bytes:
    """The whole body, or WebNotVerified once it passes *limit*."""
    data = await read_whole(response, limit)
    if data is None:
        raise WebNotVerified(too_large)
    return data


def root_of(hashes: Mapping[str, str]) -> str:
    """The bundle's root from ``{path: sha256 hex}``."""
    listed = [{"path": path, "sha256": sha} for path, sha in sorted(hashes.items())]
    return hashlib.sha256(canonical_json(listed)).hexdigest()


async def verify_web(url: str, verifier: note.Verifier) -> Verified:
    """Run the three checks against the gateway at *url*; raises WebNotVerified or ApiError."""
    async with _WebClient(url, "") as api:
        release = await api.release()
        try:
            manifest, root, seq = release["manifest"], release["root"], release["seq"]
            listed = {a["path"]: a["sha256"] for a in manifest["assets"]}
        except (KeyError, TypeError):
            raise WebNotVerified("the gateway's release answer is malformed") from None
        if not listed or len(listed) > MAX_ASSETS or any(not ASSET_PATH.fullmatch(p) or ".." in p for p in listed):
            raise WebNotVerified("the release lists no assets, too many, or paths outside /app/")
        served = {}
        for path in sorted(listed):
            served[path] = hashlib.sha256(await api.asset(path)).hexdigest()
        _check_page(await api.page(), manifest)
    for path, sha in served.items():
        if sha != listed[path]:
            raise WebNotVerified(f"the served {path} is not the released file (SHA-256 {sha[:16]}…)")
    if root_of(served) != root or manifest.get("root") != root:
        raise WebNotVerified("the served assets do not make up the released root")
    size = _check_logged(release, root, seq, verifier)
    return Verified(root, seq, len(served), size)


def _check_page(html: str, manifest: dict) -> None:
    """Step 4: the page's scripts and styles are released assets, pinned by their released SRI."""
    released = {a["path"]: a.get("integrity") for a in manifest["assets"]}
    loads = _LOADS.findall(html)
    scripts = _SCRIPT.findall(html)
    if not loads or any("src=" not in tag for tag in scripts) or len(scripts) > sum(t == "script" for t, _, _ in loads):
        raise WebNotVerified(f"the page {PAGE} runs code that is not a released asset")
    for _, path, integrity in loads:
        if released.get(path) != integrity:
            raise WebNotVerified(f"the page {PAGE} loads {path} without its released integrity")


def _check_logged(release: dict, root: str, seq: int, verifier: note.Verifier) -> int:
    """Step 3: the entry names the root and is in a checkpoint signed by *verifier*; its size."""
    try:
        entry = base64.b64decode(release["entry"], validate=True)
        fields = json.loads(entry)
    except (KeyError, TypeError, ValueError):
        raise WebNotVerified("the release's log entry is malformed") from None
    expected = {"action": RELEASE_ACTION, "outcome": "allow", "object": root, "seq": seq}
    if not isinstance(fields, dict) or any(fields.get(k) != v for k, v in expected.items()):
        raise WebNotVerified("the log entry does not record this release")
    if not release.get("proof"):
        raise WebNotVerified("no signed checkpoint covers the release entry yet; try again shortly")
    try:
        proof = tlog_proof.parse_tlog_proof(release["proof"].encode())
        if proof.index != seq:
            raise WebNotVerified("the inclusion proof is for another entry")
        checkpoint = tlog_proof.verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(entry), verifier=verifier,
                                                  origin=verifier.name)
    except CryptoError as exc:
        raise WebNotVerified(f"the release is not proven to be in the log ({exc})") from None
    return checkpoint.size


async def verify_web_verb(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    key = args.key or env.get(LOG_VERIFIER_ENV) or None
    if key is None:
        raise CLIError("the log's verifier key must be pinned: get it with `carebridge audit pubkey` over a "
                       f"channel you trust and pass --key VERIFIER_KEY (or set {LOG_VERIFIER_ENV})")
    try:
        verifier = note.Verifier.parse(key)
    except CryptoError:
        raise CLIError("--key: not a log verifier key (NAME+HEX+BASE64)") from None
    try:
        verified = await verify_web(args.url, verifier)
    except (WebNotVerified, ApiError) as exc:
        raise CLIError(f"FAILED: {exc}") from None
    text = (f"OK: {args.url} serves web release {verified.root} ({verified.assets} assets), "
            f"logged as entry {verified.seq}, in the checkpoint of size {verified.checkpoint_size}")
    print(json.dumps({"ok": True, **asdict(verified)}) if args.json else text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify-web", help="check that the web app a gateway serves is the release in its log")
    p.add_argument("url", help="the gateway, e.g. https://gateway.example")
    p.add_argument("--key", metavar="VERIFIER_KEY",
                   help=f"the log's verifier key as you know it (pinned; default: ${LOG_VERIFIER_ENV})")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=lambda a, e: asyncio.run(verify_web_verb(a, e)))
