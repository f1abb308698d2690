"""The handoff form on /send (#16 item 5, the web half) in Chromium against a real gateway.

A clinic uploader fills in the handoff template as a form; the page draws the PDF with the
CLI's own renderer (gateway/client/handoff.py under Pyodide, in the gate's Worker), and it is
byte for byte the PDF `carebridge handoff render` writes from the same fields. The drawn PDF
goes on as a chosen file: the gate in the page passes it, it is encrypted, signed and sent,
and the spa person's CLI decrypts the gate's sanitized bytes. Every request is recorded:
none carries a field's value (the client block included), and none goes anywhere but the
gateway. A value over its limit is refused with the CLI's line naming the field; a clinic's
own template (one more field) gives the form that field and the CLI's PDF for it. A phone
number typed into a field is found by the gate.
Screenshots: the form filled in, a refusal, the clinic's template drawn.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from carebridge.gateway.client.handoff import builtin_template_text
from carebridge.gateway.client.redaction import inspect_document
from tests.test_e2e import Deployment, running_server

from .conftest import require_bundle
from .test_link_pages import TIMEOUT_MS
from .test_send_upload import RECIPIENT, UPLOADER, Site, enrolled, fill_form, signed_in  # noqa: F401

pytestmark = pytest.mark.browser
NAME = "treatment-summary.pdf"  # the CLI's name for a handoff (send --handoff)
SUMMARY = {
    "treatments": [{"date": "2026-11-02", "what": "Superficial chemical peel, glycolic 30 % (synthetic TEST)"},
                   {"date": "2026-11-16", "what": "LED therapy session, made-up TEST entry"}],
    "products": ["Glycolic acid 30 % peel (synthetic example)", "Hyaluronic serum 1 % — TEST"],
    "skin_type": "Fitzpatrick III, combination (made up)",
    "contraindications": ["No retinoids for 7 days after the TEST peel"],
    "aftercare": "Gentle cleanser twice daily.\nMineral sunscreen SPF 50 every morning (TEST).",
    "follow_up_interval": "Four weeks, synthetic",
    "contact": "The referring clinic's front desk, through carebridge notes",
}
CLIENT = {"client_name": "Quilla Testperson-Handoff", "contact": "quilla.handoff@example.test",
          "reason": "aftercare after a synthetic TEST peel"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_bundle()
    root = tmp_path_factory.mktemp("handoff-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        yield enrolled(Deployment(data, url, work), url, work)


def cli_render(site: Site, name: str, summary: dict, template: Path | None = None) -> bytes:
    """`carebridge handoff render` on a JSON fields file of *summary* (and the client block)."""
    fields, out = site.work / f"{name}.json", site.work / f"{name}.pdf"
    spec = json.loads(template.read_text() if template else builtin_template_text())
    fields.write_text(json.dumps({"template": spec["id"], "version": spec["version"], "client": CLIENT,
                                  "summary": summary}))
    site.cli.ok("handoff", "render", fields, "-o", out, *(("--template", template) if template else ()))
    return out.read_bytes()


def open_form(page, url: str, template: Path | None = None) -> None:
    page.goto(url + "/send")
    if template:
        page.get_by_label("Or your clinic's own template (JSON)").set_input_files(str(template))
    else:
        page.get_by_role("button", name="Fill in a handoff summary").click()
    page.locator("form.handoff, .handoff-form [role=alert]").first.wait_for()
    assert not page.locator(".handoff-form [role=alert]").all_inner_texts()


def fill(page, summary: dict, client: dict | None = None) -> None:
    """Type *summary* into the form as a person would: texts, lists one per line, dated rows."""
    for name, value in summary.items():
        if isinstance(value, str):
            page.locator(f"#handoff-{name}").fill(value)
        elif value and isinstance(value[0], str):
            page.locator(f"#handoff-{name}").fill("\n".join(value))
        else:
            for n, entry in enumerate(value, start=1):
                if n > 1:
                    page.locator(f"#handoff-{name}").get_by_role("button", name="Add a row").click()
                page.locator(f"#handoff-{name}-{n}-date").fill(entry["date"])
                page.locator(f"#handoff-{name}-{n}-what").fill(entry["what"])
    for name, value in (client or {}).items():
        page.locator(f"#handoff-client-{name}").fill(value)


def draw(page) -> str:
    """Draw the form; the SHA-256 of the PDF the page drew."""
    page.get_by_role("button", name="Draw the summary").click()
    return page.locator("code.handoff-sha256").inner_text()


def test_the_form_draws_the_clis_pdf_which_is_gated_sent_and_opened_by_the_cli(
        browser, site: Site, artifacts: Path) -> None:
    cli_pdf = cli_render(site, "cli", SUMMARY)
    sanitized = inspect_document(cli_pdf).sanitized
    context, page, requests = signed_in(browser, site)
    try:
        started = time.monotonic()
        open_form(page, site.url)
        opened = time.monotonic() - started
        fill(page, SUMMARY, CLIENT)
        started = time.monotonic()
        drawn_sha = draw(page)
        drawn = time.monotonic() - started
        page.screenshot(path=artifacts / "handoff-1-form-drawn.png", full_page=True)
        page.get_by_role("button", name="Check it and continue").click()
        page.get_by_role("heading", name="No findings").wait_for()
        gated_sha = page.locator("code.sha256").inner_text()
        page.get_by_role("button", name="Continue: recipients and sending").click()
        page.locator("form.send").wait_for()
        fill_form(page, site)
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        page.screenshot(path=artifacts / "handoff-2-sent.png", full_page=True)
        doc_id = page.locator("code.document-id").inner_text()
    finally:
        context.close()
    print(f"handoff form: page to form {opened:.1f} s (the gate and the renderer loaded), draw {drawn:.1f} s")
    # The page's PDF is the CLI's, byte for byte (fpdf2's dates and /ID are fixed by handoff.render).
    assert drawn_sha == hashlib.sha256(cli_pdf).hexdigest()
    assert gated_sha == hashlib.sha256(sanitized).hexdigest()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(cli_pdf)).pages)
    assert "Mineral sunscreen SPF 50" in text and not [v for v in CLIENT.values() if v in text]

    out = site.work / "fetched-handoff.pdf"
    fetched = site.cli.ok_json("fetch", doc_id, "-o", out, token=site.tokens[RECIPIENT], identity=site.keys[RECIPIENT])
    assert out.read_bytes() == sanitized and fetched["name"] == NAME

    # Nothing typed left the page in plain, and nothing was fetched from anywhere but the gateway.
    typed = [e["what"] for e in SUMMARY["treatments"]] + SUMMARY["products"] + SUMMARY["contraindications"]
    typed += [v for v in SUMMARY.values() if isinstance(v, str)] + list(CLIENT.values())
    windows = [cli_pdf[i:i + 48] for i in range(0, len(cli_pdf) - 48, len(cli_pdf) // 16)]
    requests.assert_none_carries(*(v.encode() for v in typed), NAME.encode(), *windows)
    # (The browser's own PDF viewer loads from chrome-extension: and chrome:, and the preview is a blob:.)
    network = [head.split(" ")[1] for head, _ in requests.seen if head.split(" ")[1].startswith(("http", "ws"))]
    assert network and not [u for u in network if not u.startswith(site.url + "/")]
    assert any("/app/handoff-" in head for head, _ in requests.seen), "the handoff renderer was loaded"


def test_a_value_over_its_limit_is_refused_naming_the_field_and_a_clinic_template_adds_fields(
        browser, site: Site, artifacts: Path) -> None:
    context, page, requests = signed_in(browser, site)
    try:
        open_form(page, site.url)
        fill(page, {**SUMMARY, "skin_type": "x" * 201})
        page.get_by_role("button", name="Draw the summary").click()
        refusal = page.locator(".handoff-field [role=alert]")
        refusal.wait_for()
        refused = refusal.inner_text()
        invalid = page.locator("#handoff-skin_type").get_attribute("aria-invalid")
        focused = page.evaluate("document.activeElement.id")
        page.screenshot(path=artifacts / "handoff-3-refused.png", full_page=True)
        # A required field left empty: named too.
        page.locator("#handoff-skin_type").fill("")
        page.get_by_role("button", name="Draw the summary").click()
        page.locator(".handoff-field [role=alert]", has_text="is required").wait_for()
        required = page.locator(".handoff-field [role=alert]").inner_text()
        # An identifier typed into a field is found by the gate like one in any PDF.
        page.locator("#handoff-skin_type").fill(SUMMARY["skin_type"])
        page.locator("#handoff-contact").fill("Front desk: (555) 010-1234")
        draw(page)
        page.get_by_role("button", name="Check it and continue").click()
        page.get_by_role("heading", name="1 finding(s) would block sending").wait_for()
        rules = page.locator("table.findings tbody td:nth-child(2)").all_inner_texts()

        # A clinic's own template: the built-in one with one more field, drawn as the CLI draws it.
        spec = json.loads(builtin_template_text())
        spec["fields"].append({"name": "patch_test", "label": "Patch test result", "kind": "text", "max_chars": 300})
        template = site.work / "clinic-template.json"
        template.write_text(json.dumps(spec))
        summary = {**SUMMARY, "patch_test": "No reaction after 48 hours (synthetic TEST)"}
        open_form(page, site.url, template)
        fill(page, summary, CLIENT)
        drawn_sha = draw(page)
        page.screenshot(path=artifacts / "handoff-4-clinic-template.png", full_page=True)
    finally:
        context.close()
    assert refused == "Not drawn: form: summary.skin_type: longer than 200 characters."
    assert (invalid, focused) == ("true", "handoff-skin_type")
    assert required == "Not drawn: form: summary.skin_type (Skin type) is required."
    assert rules == ["phone"]
    assert drawn_sha == hashlib.sha256(cli_render(site, "clinic", summary, template)).hexdigest()
    requests.assert_none_carries(b"x" * 201, b"010-1234", summary["patch_test"].encode(), CLIENT["client_name"].encode())
