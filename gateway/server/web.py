"""The browser app's static files, its pages' HTML shells, and its release on the record.

A browser can only run the JavaScript this gateway sends it, so what is sent
is made checkable:

- ``scripts/build_web.py`` builds ``gateway/web/dist``: content-hashed assets
  and ``manifest.json`` (path, SHA-256 and SRI string of every asset, and the
  bundle's *root*: SHA-256 of the canonical JSON of the ``{"path", "sha256"}``
  list sorted by path).
- At start the gateway re-hashes the files against the manifest (a bundle
  that does not match is not served). Before the first byte of a bundle it
  has never served leaves, it appends a ``web.release`` allow entry whose
  object is the root (once per root, across restarts); the scheduled
  checkpoints then make it provable.
- ``GET /app/{name}``: an asset of the bundle, from disk, cached for good
  (its name is its hash). ``GET /api/v1/web/release``: the manifest, the
  entry and a C2SP tlog-proof of it, for ``carebridge verify-web``.
  ``GET /keys/new``: the key setup page (a key file made in the browser).
  ``GET /send``: the send page, whose redaction gate runs the project's
  Python gate under Pyodide in a Worker (``scripts/build_web.py`` puts
  Pyodide's files in one content-named subfolder: an asset path is a name,
  or one such folder and a name, never more).
- Pages are tiny server-rendered shells that load the assets with SRI under
  :data:`PAGE_CSP` (no inline script or style). Without a built bundle the
  gateway starts all the same, and its pages say the web app is not built.
- A page opened with a working session cookie carries the signed-in header
  (:func:`header`: who, which organisation and role, the pages the role has,
  and a sign-out button wired by ``shell.js``); :func:`viewers` finds the
  person before the page handler runs. The pages themselves are in
  :mod:`.pages`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from carebridge.crypto import tlog_proof
from carebridge.crypto.canonical import canonical_json
from carebridge.storage.db import ledger
from carebridge.storage.db.store import Store, Tx

from .context import SERVICES, SETTINGS, STORE
from .refusals import CALLER, logs_as
from .usecases.refusal import Refusal
from .usecases.signin import Viewer, viewer
from .vocabulary import LogAction, Why

log = logging.getLogger("carebridge.server")

DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists a handful of assets; far below this
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'")
# A hashed name never changes meaning: browsers may keep it for a year without asking.
ASSET_CACHE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {"js": "text/javascript", "mjs": "text/javascript", "css": "text/css",
                 "wasm": "application/wasm", "json": "application/json", "zip": "application/zip",
                 "whl": "application/zip"}
# What the pages load (scripts/build_web.py ENTRIES), and what the gate Worker loads; shell.js
# wires the signed-in header.
GATE_WHEELS = ("pypdf.whl", "fonttools.whl")  # what the gate imports besides its own sources
# What the gate Worker loads when the send page's handoff form is first used: fpdf2 (and defusedxml,
# which it imports), and the CLI's handoff module with its template and fonts.
HANDOFF_FILES = ("fpdf2.whl", "defusedxml.whl", "handoff.zip")
ENTRIES = frozenset({"app.css", "link.js", "keys.js", "shell.js", "signin.js", "enroll.js", "sessions.js",
                     "send.js", "gate.js", "gate.worker.js", "gate.zip", "pyodide.mjs", *GATE_WHEELS, *HANDOFF_FILES,
                     "audit.js", "outbox.js", "keyring.js", "keyring.worker.js", "inbox.js", "cases.js"})
# An asset path: a file name, or one folder and a file name (Pyodide's runtime folder).
ASSET_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?")
# The gate Worker's own policy (a Worker is governed by the CSP its script is served with):
# WebAssembly may be compiled there, and only there; no eval, nothing from elsewhere.
WORKER_CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'"
# The keyring Worker (keyring.worker.js) holds unlocked keys: it may run its own script and reach nothing.
KEYS_WORKER_CSP = "default-src 'none'; script-src 'self'"
# The send page shows the sanitized PDF from a blob: URL in a frame (the browser's own viewer).
SEND_CSP = PAGE_CSP + "; frame-src blob:; object-src 'none'"
VIEWER: web.RequestKey[Viewer | None] = web.RequestKey("viewer", object)
_NOT_PAGES = ("/api/", "/app/")  # paths whose answers are never a page shell
# The signed-in header's links: (path, label, the roles that have the page).
NAV = (("/inbox", "Inbox", {"recipient"}), ("/send", "Send", {"uploader"}), ("/outbox", "Outbox", {"uploader"}),
       ("/cases", "Cases", {"uploader", "recipient"}),
       ("/audit", "Log", {"auditor"}), ("/keys", "Keys", None), ("/sessions", "Sessions", None))


@dataclass(frozen=True, slots=True)
class Asset:
    path: str
    sha256: str
    integrity: str


@dataclass(frozen=True, slots=True)
class Bundle:
    """A built web app whose files on disk matched its manifest when it was loaded."""

    folder: Path
    root: str
    assets: Mapping[str, Asset]
    entries: Mapping[str, str]  # source name (link.js) -> asset path
    manifest: dict

    def entry(self, source: str) -> Asset:
        return self.assets[self.entries[source]]


class Release:
    """The bundle being served, and the seq of its ``web.release`` entry once logged."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.seq: int | None = None
        self._lock = asyncio.Lock()

    async def logged(self, store: Store) -> int:
        """The entry's seq: appended before the first byte of the bundle leaves (once per root)."""
        if self.seq is None:
            async with self._lock:
                if self.seq is None:
                    self.seq = await store.write(lambda tx: _release_entry(tx, self.bundle.root))
                    log.info("serving web release %s (log entry %d)", self.bundle.root, self.seq)
        return self.seq


RELEASE: web.AppKey[Release | None] = web.AppKey("web_release", object)


def root_of(assets: list[dict]) -> str:
    """The bundle's root: SHA-256 of the canonical JSON of the sorted ``{path, sha256}`` list."""
    listed = sorted(({"path": a["path"], "sha256": a["sha256"]} for a in assets), key=lambda a: a["path"])
    return hashlib.sha256(canonical_json(listed)).hexdigest()


def load_bundle(folder: Path = DIST) -> Bundle | None:
    """The bundle in *folder* if it is there and its files match its manifest; else None (warned)."""
    try:
        raw = (folder / MANIFEST_NAME).read_bytes()
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError("manifest too large")
        manifest = json.loads(raw)
        assets = {a["path"]: Asset(a["path"], a["sha256"], a["integrity"]) for a in manifest["assets"]}
        for asset in assets.values():
            if not ASSET_PATH.fullmatch(asset.path) or ".." in asset.path:
                raise ValueError("an asset path names another folder")
            if hashlib.sha256((folder / asset.path).read_bytes()).hexdigest() != asset.sha256:
                raise ValueError(f"{asset.path} does not match the manifest")
        if root_of(manifest["assets"]) != manifest["root"]:
            raise ValueError("the root does not match the assets")
        entries = {source: path for source, path in manifest["entries"].items() if path in assets}
        if not ENTRIES <= entries.keys():
            raise ValueError("an entry point is missing")
    except FileNotFoundError:
        log.warning("web app not built (no %s): pages will say so; run scripts/build_web.py", folder / MANIFEST_NAME)
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("web app not served: the bundle in %s is damaged (%s)", folder, type(exc).__name__)
        return None
    return Bundle(folder, manifest["root"], assets, entries, manifest)


async def load_release(app: web.Application) -> None:
    """``on_startup``: load (and check) the bundle; it is logged when first served."""
    bundle = await asyncio.to_thread(load_bundle, DIST)
    app[RELEASE] = Release(bundle) if bundle else None
    if bundle and app[SETTINGS].accel_redirect:
        # Behind nginx, which serves /app/ from dist itself: logged now, before any
        # page that loads the bundle can be served (pages come from the gateway).
        await app[RELEASE].logged(app[STORE])


def _release_entry(tx: Tx, root: str) -> int:
    """The seq of the allow entry that logged *root*, appending it if there is none."""
    where = ledger.EntryFilter(action=LogAction.web_release.value, document=root, outcome="allow")
    found = tx.ledger.select_entries(start=0, end=tx.ledger.tree_size(), where=where, limit=1)
    if found:
        return found[0][0]
    return tx.log(action=LogAction.web_release.value, outcome="allow", reason=Why.ok.value, object=root)


@logs_as(LogAction.web_release, public=True)
async def asset(request: web.Request) -> web.StreamResponse:
    served = request.app[RELEASE]
    found = served.bundle.assets.get(request.match_info["name"]) if served else None
    if found is None:  # only the manifest's names: nothing else on disk is reachable
        raise Refusal(Why.not_found, "not an asset of the served release")
    await served.logged(request.app[STORE])
    bundle = served.bundle
    kind = CONTENT_TYPES.get(found.path.rsplit(".", 1)[-1], "application/octet-stream")
    headers = {"Cache-Control": ASSET_CACHE, "Content-Type": kind}
    if found.path == bundle.entries.get("gate.worker.js"):
        headers["Content-Security-Policy"] = WORKER_CSP
    if found.path == bundle.entries.get("keyring.worker.js"):
        headers["Content-Security-Policy"] = KEYS_WORKER_CSP
    return web.FileResponse(bundle.folder / found.path, headers=headers)


@logs_as(LogAction.web_release, public=True)
async def release(request: web.Request) -> web.Response:
    """The served bundle's manifest, its ``web.release`` log entry and a proof of inclusion."""
    served = request.app[RELEASE]
    if served is None:
        raise Refusal(Why.not_found, "this gateway serves no web app")
    bundle, seq = served.bundle, await served.logged(request.app[STORE])

    def read(db) -> tuple[bytes, str | None]:
        entry = db.ledger.entries_by_seq([seq])[seq]
        checkpoint = db.ledger.smallest_checkpoint_at_least(seq + 1)
        if checkpoint is None:
            return entry, None
        hashes = db.ledger.inclusion_proof(seq, checkpoint.size)
        return entry, tlog_proof.TlogProof(index=seq, hashes=tuple(hashes),
                                           signed_checkpoint=checkpoint.note).format().decode()

    entry, proof = await request.app[STORE].query(read)
    return web.json_response({"root": bundle.root, "manifest": bundle.manifest, "seq": seq,
                              "entry": base64.b64encode(entry).decode(), "proof": proof})


@logs_as(LogAction.web_release, public=True)
async def key_setup(request: web.Request) -> web.Response:
    """The key setup page: keys made in the browser (gateway/web/src/keys.js), needing no sign-in."""
    body = ("<p>Your keys are made in this page and never leave your device.</p>"
            "<noscript><p>This page needs JavaScript. Without it, use <code>carebridge keygen -o FILE</code>."
            "</p></noscript>")
    return page(request, status=200, heading="Make your key file", body=body, script="keys.js")


@logs_as(LogAction.web_release, public=True)
async def send_page(request: web.Request) -> web.Response:
    """The send page: a PDF checked by the redaction gate in the page (gateway/web/src/send.js)."""
    body = ("<p>Your summary is checked and sanitized in this page; nothing is sent until you send it.</p>"
            "<noscript><p>This page needs JavaScript. Without it, use <code>carebridge send</code>.</p></noscript>")
    return page(request, status=200, heading="Send a treatment summary", body=body, script="send.js",
                gate=True, csp=SEND_CSP)


def gate_meta(bundle: Bundle) -> str:
    """``<meta name="carebridge-gate">``: the gate Worker's files and the SRI of those it fetches
    (the handoff renderer's when the form is first used)."""
    def listed(names: tuple[str, ...]) -> list[dict]:
        return [{"url": "/app/" + bundle.entries[name], "integrity": bundle.entry(name).integrity} for name in names]

    urls = {"worker": "/app/" + bundle.entries["gate.worker.js"], "pyodide": "/app/" + bundle.entries["pyodide.mjs"],
            "archives": listed((*GATE_WHEELS, "gate.zip")), "handoff": listed(HANDOFF_FILES)}
    return f'<meta name="carebridge-gate" content="{html.escape(json.dumps(urls, sort_keys=True))}">'


def page(request: web.Request, *, status: int, heading: str, body: str, script: str | None = None,
         gate: bool = False, csp: str = PAGE_CSP) -> web.Response:
    """A page shell: *body* (trusted HTML, escaped by the caller) in ``<main id=app>``, and
    *script* (a source name, e.g. ``link.js``) loaded with SRI to take it over; with *gate*,
    the redaction gate's files are named for it (:func:`gate_meta`). A signed-in visitor
    (:data:`VIEWER`) gets the signed-in header above it."""
    served = request.app.get(RELEASE)
    bundle = served.bundle if served else None
    person = request.get(VIEWER)
    head = '<meta name="viewport" content="width=device-width, initial-scale=1">'
    footer = ""
    if bundle is not None:
        css = bundle.entry("app.css")
        head += f'<link rel="stylesheet" href="/app/{css.path}" integrity="{css.integrity}">'
        for name in ([script] if script else []) + (["shell.js"] if person else []):
            js = bundle.entry(name)
            head += f'<script type="module" src="/app/{js.path}" integrity="{js.integrity}"></script>'
        head += f'<meta name="carebridge-release" content="{bundle.root}">'
        # Any page may unlock the person's keys (gateway/web/src/lib/keyring.js) in this Worker.
        head += f'<meta name="carebridge-keyring" content="/app/{bundle.entries["keyring.worker.js"]}">'
        if gate:
            head += gate_meta(bundle)
        footer = f"<footer>carebridge web release {bundle.root}</footer>"
    elif script:
        body += "<p>The web app is not built on this gateway, so this page cannot work: use the carebridge CLI.</p>"
    top = header(person, request.path) if person else ""
    text = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)} '
            f'– carebridge</title>{head}</head><body>{top}<main id="app"><h1>{html.escape(heading)}</h1>'
            f"{body}</main>{footer}</body></html>")
    return web.Response(status=status, text=text, content_type="text/html",
                        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})


def header(person: Viewer, current: str) -> str:
    """The signed-in header: the person, their organisation and role, their pages, sign-out."""
    role = person.user.role
    marked = ' aria-current="page"'
    links = "".join(f'<li><a href="{path}"{marked if current == path else ""}>{label}</a></li>'
                    for path, label, roles in NAV if roles is None or role in roles)
    who = (f'<span class="who-name">{html.escape(person.user.email)}</span> '
           f'<span class="who-org">{html.escape(person.org_name)}</span> '
           f'<span class="who-role">{html.escape(role)}</span>')
    return (f'<header class="shell"><a class="brand" href="/">carebridge</a>'
            f'<nav aria-label="Your pages"><ul>{links}</ul></nav>'
            f'<p class="who" aria-label="Signed in as">{who}</p>'
            f'<button type="button" class="sign-out" data-sign-out>Sign out</button></header>')


@web.middleware
async def viewers(request: web.Request, handler):
    """Find the signed-in person (:data:`VIEWER`) for a page request that carries a session cookie."""
    request[VIEWER] = None
    if request.method == "GET" and not request.path.startswith(_NOT_PAGES):
        request[VIEWER] = await viewer(request.app[SERVICES], request[CALLER])
    return await handler(request)


def setup(app: web.Application) -> None:
    """Routes and the release hook (after the store and checkpointer are up)."""
    app[RELEASE] = None
    app.on_startup.append(load_release)
    # {name} may hold one "/" (ASSET_PATH); only the manifest's paths are ever looked up.
    app.add_routes([web.get("/app/{name:[^/]+(?:/[^/]+)?}", asset), web.get("/api/v1/web/release", release),
                    web.get("/keys/new", key_setup), web.get("/send", send_page)])
