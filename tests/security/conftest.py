"""One gateway per module for the security suite: seven roles, two documents, two links.

The cast (all synthetic, ``example.test``):

==================== ================================================================
role                 who
==================== ================================================================
anonymous            no ``Authorization`` header
uploader             Sunrise Dermatology Test Clinic; sender of document A, issuer of link A
recipient            Glow Test Spa; recipient of document A
recipient_elsewhere  Other Test Spa; recipient of document B, never of A
other_clinic         Other Test Clinic; sender of document B, issuer of link B
auditor              Compliance Test Office
admin                the operator admin
==================== ================================================================

``recipient2`` (Glow Test Spa, addressed by nothing) is a bystander of the
recipient's own organisation, used by the oracle tests. Referrals:
Sunrise -> Glow, Other Clinic -> Other Spa; nothing else.

Every request a test sends carries its own ``X-Request-ID``, so the access-log
entries it caused are found exactly (:func:`entries_for`). People get a
password, a TOTP secret and sessions only when a test asks
(:mod:`.signin_requests`); the secrets handed out are in ``Cast.issued``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from carebridge.crypto.linktoken import sign_token
from carebridge.gateway.server import admin
from carebridge.gateway.server.app import create_app
from carebridge.gateway.server.context import CHECKPOINTER, KEYRING
from carebridge.gateway.server import httpserver
from carebridge.gateway.server.settings import load
from carebridge.policies.links import LinkClaims
from carebridge.storage.db import ledger

from ..gateway.server.conftest import (
    CLINIC,
    COMPLIANCE,
    OTHER_SPA,
    SPA,
    Clock,
    Gateway,
    Person,
    Reply,
    _person,
    build_upload,
    multipart,
    register_keys,
    rid,
)
from ..gateway.server.signin_helpers import PASSWORD
from .matrix import ROLES, documented_operations
from .profile_requests import seed_profiles

OTHER_CLINIC = "Other Test Clinic"
# Settings that keep the suite's own volume from tripping the abuse limits it
# does not test (hundreds of anonymous requests from 127.0.0.1), and keep the
# background checkpointer out of the way so tests control when one is signed.
SUITE_SETTINGS: dict[str, Any] = {
    "auth_failure_limit": 1_000_000,
    "link_claims_per_minute": 1_000_000,
    "checkpoint_interval": timedelta(days=1),
    "checkpoint_entries": 1_000_000,
    "link_max_uses": 100,
}
# Document A and B allow plenty of downloads and sign-in links: the matrix and
# the oracle read them many times and must never hit a limit they do not test.
ROOMY_POLICY = {"max_downloads": 100, "links": {"mode": "sign_in", "lifetime": 86_400, "uses": 100}}


@dataclass
class Cast:
    """The running gateway and everyone in it, plus the objects the matrix points at."""

    gw: Gateway
    people: dict[str, Person]  # by role label, plus "recipient2"
    stack: contextlib.AsyncExitStack = field(repr=False)
    doc_a: str = ""
    doc_b: str = ""
    link_a: tuple[str, str] = ("", "")  # (link id, token), sign-in, for the recipient
    link_b: tuple[str, str] = ("", "")  # (link id, token), sign-in, for recipient_elsewhere
    totp: dict[str, str] = field(default_factory=dict, repr=False)  # role -> TOTP secret, once enrolled
    issued: list[str] = field(default_factory=list, repr=False)  # enrollment tokens, cookies, TOTP secrets

    @property
    def clock(self) -> Clock:  # build_upload reads the clock from here
        return self.gw.clock

    def token(self, role: str) -> str | None:
        return None if role == "anonymous" else self.people[role].token

    def known_tokens(self) -> list[str]:
        """Every API token, link token and sign-in secret the suite holds: none may ever reach a log line."""
        found = [p.token for p in self.people.values()]
        return found + [self.link_a[1], self.link_b[1], PASSWORD, *self.issued]

    async def send(self, method: str, path: str, role: str, *, request_id: str | None = None,
                   headers: dict[str, str] | None = None, **kw: Any) -> Reply:
        """A request as *role*, tagged with a fresh (or given) ``X-Request-ID``."""
        all_headers = {"X-Request-ID": request_id or rid(), **(headers or {})}
        return await self.gw.request(method, path, token=self.token(role), headers=all_headers, **kw)

    async def upload(self, sender: str, recipients: list[str], **policy: Any) -> str:
        """A valid document from *sender* to *recipients* (role labels); returns its id."""
        who = [self.people[r] for r in recipients]
        body = {"version": 2, "recipients": sorted(p.user_id for p in who), **policy}
        made = build_upload(self, self.people[sender], [(p.user_id, p.keys.recipient) for p in who],
                            policy=body)
        reply = await self.gw.request("POST", "/api/v1/documents", token=self.people[sender].token,
                                      data=multipart(made.parts()))
        assert reply.status == 201, reply.body
        return made.document_id

    async def link(self, sender: str, doc_id: str, recipient: str, mode: str = "sign_in") -> tuple[str, str]:
        """Issue a link; returns (link id, token)."""
        reply = await self.gw.request("POST", f"/api/v1/documents/{doc_id}/links", token=self.people[sender].token,
                                      json={"recipient": self.people[recipient].user_id, "mode": mode})
        assert reply.status == 201, reply.body
        answer = reply.json()
        return answer["link_id"], answer["url"].split("/l/", 1)[1]

    def forge_link(self, **claims: Any) -> str:
        """A link token signed with the gateway's own current key, for claims no record backs."""
        now = self.gw.clock.whole_seconds()
        base = LinkClaims(link_id="lnk_" + secrets.token_urlsafe(16), document_id=random_doc_id(),
                          recipient_id=self.people["recipient"].user_id, mode="bearer", issued_at=now,
                          not_before=now, expires_at=now + timedelta(hours=1))
        body = {**base.to_claims(self.gw.settings.effective_public_url), **claims}
        return sign_token(body, self.gw.app[KEYRING].get().current)


def random_doc_id() -> str:
    """A well-formed document id that names nothing."""
    return "doc_" + secrets.token_urlsafe(16)


def random_link_id() -> str:
    return "lnk_" + secrets.token_urlsafe(16)


def random_user_id() -> str:
    return "usr_" + secrets.token_urlsafe(12)


async def log_entries(gw: Gateway, start: int = 0) -> list[dict]:
    """The access log from *start*, read through the ledger (no export entry added)."""
    rows = await gw.store.read(lambda conn: ledger.entry_bytes(conn, start=start, limit=1_000_000))
    return [json.loads(row) for row in rows]


async def entries_for(gw: Gateway, request_id: str) -> list[dict]:
    """The access-log entries written for the request tagged *request_id*."""
    return [e for e in await log_entries(gw) if e.get("request_id") == request_id]


async def start_gateway(tmp: Path, **overrides: Any) -> tuple[Gateway, web.AppRunner]:
    """``create_app`` on SQLite + folder behind the access logger ``serve`` uses, on a loopback port."""
    settings = replace(load(overrides={"data_dir": tmp / "data", "database_url": ""}),
                       **{**SUITE_SETTINGS, **overrides})
    clock = Clock(datetime.now(UTC))
    app = create_app(settings, clock=clock)
    # Served as `carebridge serve` serves it: the protocol edge and the access logger.
    runner = await httpserver.start(app, host="127.0.0.1", port=0, limits=httpserver.HttpLimits(),
                                    handle_signals=False)
    port = runner.addresses[0][1]
    return Gateway(f"http://127.0.0.1:{port}", app, settings, clock, ("sqlite", "folder")), runner


async def build_cast(tmp: Path, stack: contextlib.AsyncExitStack, **overrides: Any) -> Cast:
    gw, runner = await start_gateway(tmp, **overrides)
    stack.push_async_callback(runner.cleanup)
    store, settings = gw.store, gw.settings

    def run(fn, *args):
        return asyncio.to_thread(fn, store, *args)

    made = {"admin": await run(admin.init, settings, "operator@example.test")}
    await asyncio.gather(*(run(admin.create_org, name, kind) for name, kind in (
        (CLINIC, "clinic"), (OTHER_CLINIC, "clinic"), (SPA, "spa"), (OTHER_SPA, "spa"),
        (COMPLIANCE, "compliance"))))
    users = (("uploader", "uploader@sunrise.example.test", CLINIC, "uploader"),
             ("recipient", "recipient1@glow.example.test", SPA, "recipient"),
             ("recipient2", "recipient2@glow.example.test", SPA, "recipient"),
             ("recipient_elsewhere", "recipient@other-spa.example.test", OTHER_SPA, "recipient"),
             ("other_clinic", "uploader@other-clinic.example.test", OTHER_CLINIC, "uploader"),
             ("auditor", "auditor@compliance.example.test", COMPLIANCE, "auditor"))
    await run(admin.add_referral, CLINIC, SPA)
    await run(admin.add_referral, OTHER_CLINIC, OTHER_SPA)
    created = await asyncio.gather(*(run(admin.create_user, settings, email, org, role)
                                     for _, email, org, role in users))
    made.update(zip([label for label, *_ in users], created))
    people = await asyncio.gather(*(_person(gw, stack, label, c.user.email, c.user.id, c.token)
                                    for label, c in made.items()))
    cast = Cast(gw, {p.label: p for p in people}, stack)
    cast.doc_a = await cast.upload("uploader", ["recipient"], **ROOMY_POLICY)
    cast.doc_b = await cast.upload("other_clinic", ["recipient_elsewhere"], **ROOMY_POLICY)
    cast.link_a = await cast.link("uploader", cast.doc_a, "recipient")
    cast.link_b = await cast.link("other_clinic", cast.doc_b, "recipient_elsewhere")
    await seed_profiles(cast)  # both clinics have one: a GET's answer does not depend on the cells' order
    await gw.app[CHECKPOINTER].checkpoint()  # so the checkpoint and proof routes have one to serve
    return cast


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cast(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cast]:
    """The module's gateway with the cast above."""
    async with contextlib.AsyncExitStack() as stack:
        yield await build_cast(tmp_path_factory.mktemp("security"), stack)


async def reregister(cast: Cast, role: str) -> None:
    """Publish *role*'s keys again (after a test revoked them)."""
    person = cast.people[role]
    reply = await register_keys(cast.gw, person.token, person.user_id, person.keys)
    assert reply.status == 201, reply.body



# -- the server's log output -------------------------------------------------------------------

# Put into the header values tests send (test_malformed.py): must never reach a log line.
CANARY = "canary" + secrets.token_hex(6)


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture, cast: Cast) -> Iterator[pytest.LogCaptureFixture]:
    """The server's log lines during the test; afterwards, none may hold a token or :data:`CANARY`."""
    for name in ("carebridge", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    records = caplog.get_records("call")
    # The capture sees the server: every request leaves an access-log (or parser error) line.
    assert any(r.name.startswith("aiohttp.") for r in records), "no server log line was captured"
    text = "\n".join(record.getMessage() + (record.exc_text or "") for record in records)
    leaked = [s for s in [CANARY, *cast.known_tokens()] if s in text]
    assert not leaked, f"{len(leaked)} secret(s) or header value(s) in the server log"


# -- the matrix, printed at the end of the run ---------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the authorization matrix the cells recorded (``record_property("authz", …)``).

    Reports carry the cells' ``user_properties``, so this works under xdist too.
    A cell that disagrees with the table shows ``got!want``.
    """
    cells = [dict(value) for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name == "authz"]
    _schemathesis_summary(terminalreporter)
    if not cells:
        return
    write = terminalreporter.write_line
    ops = {c["op"] for c in cells}
    caused = [c for c in cells if c["got"] >= 400]
    logged = [c for c in caused if c["denies"] == 1]
    expected = [c for c in cells if int(c["want"].split()[0]) >= 400]
    write("")
    write(f"authorization matrix: {len(ops)} routes x {len(ROLES)} roles = {len(ops) * len(ROLES)} route-role "
          f"pairs; {len(cells)} cells with own/other/unknown targets")
    write(f"refusals expected {len(expected)}, refusals caused {len(caused)}, refusals logged {len(logged)}"
          + ("" if len(caused) == len(logged) else "  <-- NOT EQUAL: some refusals left no log entry"))
    write(f"{'route':46} {'target':8} " + " ".join(f"{r[:11]:>11}" for r in ROLES))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for c in cells:
        want, _, slug = c["want"].partition(" ")
        shown = str(c["got"]) if str(c["got"]) == want else f"{c['got']}!{want}"
        if slug and c["type"] is not None and not c["type"].endswith(":" + slug):
            shown += " T"  # the right status with another problem type
        if c["got"] >= 400 and c["denies"] != 1:
            shown += f" L{c['denies']}"  # deny entries logged, when not exactly one
        rows.setdefault((c["op"], c["target"]), {})[c["role"]] = shown
    for (op, target), by_role in rows.items():
        write(f"{op:46} {target:8} " + " ".join(f"{by_role.get(r, ''):>11}" for r in ROLES))
    write("(got!want: status differs from the table; T: another problem type; "
          "L<n>: a refusal with n deny entries instead of 1)")


def _schemathesis_summary(terminalreporter: Any) -> None:
    """Documented operations x roles that test_schemathesis.py fuzzed with every check passing."""
    covered = {tuple(value.split()) for reports in terminalreporter.stats.values() for report in reports
               if getattr(report, "when", None) == "call"
               for name, value in getattr(report, "user_properties", ()) if name == "schemathesis"}
    if not covered:
        return
    documented = {(method.upper(), path) for method, path in documented_operations()}
    pairs = {c for c in covered if c[:2] in documented}
    probes = {c[:2] for c in covered} - documented  # other methods on a documented path (405 expected)
    terminalreporter.write_line(
        f"schemathesis: {len({p[:2] for p in pairs})} of {len(documented)} documented operations x {len(ROLES)}"
        f" roles: {len(pairs)} of {len(documented) * len(ROLES)} operation-role pairs passed every check;"
        f" plus {len(probes)} undocumented methods probed")
