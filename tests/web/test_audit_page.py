"""The compliance officer's page (``/audit``) in a real browser (Debian's chromium), against a real gateway.

An auditor enrolls with TOTP and signs in; the log holds a few hundred
synthetic entries, written through the store before the gateway starts
(one write, not hundreds of requests). The auditor sees the key to pin (the
one ``carebridge audit pubkey`` prints) and the latest checkpoint, filters
by action and by document, pages back and forth over three pages, exports a
bundle with a filter, and the real ``carebridge audit verify --key`` passes
on the downloaded file. An uploader gets no entry and no bundle (403).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from carebridge.gateway.server.settings import Settings
from carebridge.storage.db.store import Store
from tests.test_e2e import Deployment, running_server

from .conftest import admin_at_once, admin_here, require_bundle
from .test_signin_pages import Gate, new_page, sign_in

pytestmark = pytest.mark.browser
CLINIC, COMPLIANCE = "Brindlewick Clinic TEST", "Oakhollow Compliance TEST"
AUDITOR, UPLOADER = "ines.ledger@oakhollow.example.test", "dr.brindle@brindlewick.example.test"
PASSWORDS = {AUDITOR: "synthetic auditor password 8812", UPLOADER: "synthetic uploader password 3390"}
ACTIONS = ("document.download", "document.read", "document.upload")
DOWNLOADS = 120  # document.download entries: pages of 50, 50 and 20
PAGE_SIZE = 50  # src/audit.js



@dataclass
class LogSite:
    gate: Gate
    cli: Deployment
    tokens: dict[str, str]
    work: Path


def synthetic_entries(data: Path) -> None:
    """360 entries in one write: three actions in turn, over nine documents and four people."""
    store = Store.open(Settings(data_dir=data).effective_database_url)
    try:
        store.write_sync(lambda tx: [tx.log(
            action=ACTIONS[i % 3], outcome="deny" if i % 11 == 0 else "allow", reason="ok",
            actor=f"usr_synth{i % 4}", org="org_synthclinic", object=f"doc_synth{i % 9:02d}")
            for i in range(3 * DOWNLOADS)])
    finally:
        store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogSite]:
    require_bundle()
    root = tmp_path_factory.mktemp("audit-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    offline = Deployment(data, "http://127.0.0.1:9", work)  # admin verbs need no server
    admin_here(offline, "init")
    admin_at_once(offline, ("org", "create", CLINIC, "--kind", "clinic"),
                  ("org", "create", COMPLIANCE, "--kind", "compliance"))
    people = ((AUDITOR, COMPLIANCE, "auditor"), (UPLOADER, CLINIC, "uploader"))
    links, tokens = {}, {}
    made = admin_at_once(offline, *[("user", "create", email, "--org", org, "--role", role) for email, org, role in people])
    for (email, _, _), created in zip(people, made, strict=True):
        links[email], tokens[email] = created["enrollment_url"].split("#", 1)[1], created["token"]
    synthetic_entries(data)
    with running_server(data, root / "server.log") as url:
        yield LogSite(Gate(url, links), Deployment(data, url, work), tokens, work)


def enroll_and_sign_in(page, site: LogSite, email: str) -> None:
    gate = site.gate
    page.goto(f"{gate.url}/enroll#{gate.links[email]}")
    page.get_by_role("heading", name="Set up your account").wait_for()
    gate.totp[email] = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("New password", exact=True).fill(PASSWORDS[email])
    page.get_by_label("The same password again").fill(PASSWORDS[email])
    page.get_by_label("Code shown by the app").fill(gate.code(email))
    page.get_by_role("button", name="Finish setting up").click()
    page.get_by_role("heading", name="Your account is ready").wait_for()
    page.goto(gate.url + "/audit")
    page.wait_for_url("**/signin#next=%2Faudit")
    sign_in(page, gate, email, code=gate.code(email), password=PASSWORDS[email])
    page.wait_for_url(gate.url + "/audit")


def shown(page) -> list[dict]:
    """The table's rows, as entries (seq an int)."""
    rows = []
    for row in page.locator("table.log tbody tr").all():
        cells = {name: row.locator(f"td.col-{name}").inner_text() for name in ("seq", "action", "object")}
        rows.append({**cells, "seq": int(cells["seq"])})
    return rows


def apply(page, **fields: str) -> None:
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.evaluate("document.querySelector('#entries > *').dataset.stale = '1'")  # until the page redraws it
    page.get_by_role("button", name="Show entries").click()
    page.locator("#entries > :not([data-stale])").wait_for()


def turn(page, button: str) -> None:
    before = page.locator("#page-range").inner_text()
    page.locator(button).click()
    page.wait_for_function("(before) => document.querySelector('#page-range')?.textContent !== before", arg=before)


def test_auditor_filters_pages_exports_and_the_cli_verifies(browser, site: LogSite, artifacts: Path) -> None:
    pinned = site.cli.ok_json("audit", "pubkey", token=site.tokens[AUDITOR])
    context, page = new_page(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.gate.url)
    try:
        enroll_and_sign_in(page, site, AUDITOR)
        page.get_by_role("heading", name="The access log").wait_for()
        assert page.locator("header.shell a[aria-current=page]").inner_text() == "Log"
        # the key to pin is the CLI's, and the copy button copies it whole
        assert page.locator("#verifier-key").inner_text() == pinned["verifier_key"]
        assert page.locator("#key-fingerprint").inner_text() == pinned["fingerprint"]
        page.get_by_role("button", name="Copy the verifier key").click()
        page.get_by_text("Copied.").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == pinned["verifier_key"]
        page.get_by_role("button", name="Sign a checkpoint now").click()
        assert int(page.locator("#checkpoint-size").inner_text()) >= 3 * DOWNLOADS
        assert page.locator("#checkpoint-root").inner_text()
        assert "carebridge audit verify" in page.locator("#verify-help").inner_text()

        # by action: three pages, newest first, walked down and back up
        apply(page, Action="document.download")
        pages = [shown(page)]
        for _ in range(2):
            turn(page, "#older")
            pages.append(shown(page))
        assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE, DOWNLOADS - 2 * PAGE_SIZE]
        seqs = [row["seq"] for p in pages for row in p]
        assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == DOWNLOADS
        assert {row["action"] for p in pages for row in p} == {"document.download"}
        assert page.locator("#older").is_disabled() and page.locator("#newer").is_enabled()
        turn(page, "#newer")
        assert shown(page) == pages[1]
        turn(page, "#newer")
        assert shown(page) == pages[0]

        # by document (and no action): every entry of that document
        page.get_by_label("Action", exact=True).fill("")
        apply(page, **{"Document id": "doc_synth04"})
        rows = shown(page)
        assert len(rows) == 3 * DOWNLOADS // 9 and {row["object"] for row in rows} == {"doc_synth04"}
        assert page.locator("#older").is_disabled()
        page.screenshot(path=artifacts / "audit-1-filtered-desktop.png", full_page=True)
        # a time range (the page's local time, sent as UTC): all of it, then none of it
        apply(page, **{"From (your time)": "2000-01-01T00:00:00"})
        assert shown(page) == rows
        apply(page, **{"From (your time)": "2099-01-01T00:00:00"})
        page.locator("#no-entries").wait_for()
        page.get_by_label("From (your time)", exact=True).fill("")

        # export with a filter (document and action): the bundle the CLI verifies offline
        page.get_by_label("Action", exact=True).fill("document.read")
        with page.expect_download() as download:
            page.get_by_role("button", name="Export a bundle").click()
        saved = site.work / download.value.suggested_filename
        download.value.save_as(saved)
        page.locator("#exported").wait_for()
        assert saved.name.startswith("carebridge-audit-") and saved.suffix == ".zip"
        page.locator("#checkpoint-size").filter(has_text=saved.stem.removeprefix("carebridge-audit-")).wait_for()
        page.screenshot(path=artifacts / "audit-2-exported-desktop.png", full_page=True)
    finally:
        context.close()
    with zipfile.ZipFile(saved) as bundle:
        header = json.loads(bundle.read("bundle.json"))
        entries = [json.loads(line) for line in bundle.read("entries.jsonl").splitlines()]
    assert header["filters"] == {"action": "document.read", "document": "doc_synth04"}
    assert len(entries) == 3 * DOWNLOADS // 9  # every entry of doc_synth04 is a document.read
    assert {(e["action"], e["object"]) for e in entries} == {("document.read", "doc_synth04")}
    verified = site.cli.run("audit", "verify", saved, "--key", pinned["verifier_key"])
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"OK: {len(entries)} entries verified"), verified.stdout
    assert "a filtered selection" in verified.stdout
    tampered = saved.with_name("tampered.zip")
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data.replace(b'"outcome":"allow"', b'"outcome":"deny"', 1)
                         if info.filename == "entries.jsonl" else data)
    refused = site.cli.run("audit", "verify", tampered, "--key", pinned["verifier_key"])
    assert refused.returncode != 0 and "FAILED" in refused.stderr, refused.stdout


def test_a_non_auditor_gets_no_log(browser, site: LogSite, artifacts: Path) -> None:
    context, page = new_page(browser)
    try:
        enroll_and_sign_in(page, site, UPLOADER)
        page.get_by_role("alert").filter(has_text="This page is for auditors").wait_for()
        assert page.locator("table.log").count() == 0
        page.screenshot(path=artifacts / "audit-3-not-an-auditor-desktop.png", full_page=True)
        # the page's own calls, as the page makes them (same origin, session cookie, CSRF header on POST)
        for method, path in (("GET", "/api/v1/audit/entries?count=5"), ("POST", "/api/v1/audit/bundle")):
            status, kind, body = page.evaluate("""async ([method, path]) => {
                const r = await fetch(path, { method, headers: { "X-Carebridge-CSRF": "1" } });
                return [r.status, r.headers.get("Content-Type"), await r.json()];
            }""", [method, path])
            assert status == 403 and kind.startswith("application/problem+json"), (path, status, kind)
            assert body["type"].endswith(":role-forbidden"), body
    finally:
        context.close()
