"""The handoff template (#16 item 5): fields in, a clean PDF out, checked by the gate like any other."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from carebridge.gateway.client import handoff, redaction
from carebridge.gateway.client.handoff import HandoffError

FIELDS = """
template = "handoff"
version = 1

[client]
client_name = "Quilla Testperson"

[summary]
skin_type = "Fitzpatrick III, combination (made up)"
aftercare = "Gentle cleanser twice daily.\\nMineral sunscreen SPF 50 every morning."
products = ["Glycolic acid 30 % peel (synthetic example)", "Hyaluronic serum 1 %"]
contraindications = ["No retinoids for 7 days"]
follow_up_interval = "4 weeks"
contact = "The referring clinic's front desk, through carebridge notes"

[[summary.treatments]]
date = "2026-11-02"
what = "Superficial chemical peel, glycolic 30 %"

[[summary.treatments]]
date = "2026-11-16"
what = "LED therapy session"
"""


def _text(pdf: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(pdf).pages)


def test_every_field_is_drawn_in_order_and_the_client_is_not(tmp_path: Path) -> None:
    fields = tmp_path / "fields.toml"
    fields.write_text(FIELDS)
    filled = handoff.load_fields(fields, handoff.builtin_template())
    out = tmp_path / "summary.pdf"
    handoff.render(filled, out, case_ref="CB-TEST-0001")
    text = _text(out)
    order = ["Treatments and dates of service", "2026-11-02: Superficial chemical peel",
             "2026-11-16: LED therapy", "Products and concentrations", "- Glycolic acid 30 %", "Skin type",
             "Fitzpatrick III", "Contraindications", "No retinoids", "Aftercare instructions", "Gentle cleanser",
             "Mineral sunscreen", "Follow-up interval", "4 weeks", "Contact for questions", "CB-TEST-0001"]
    for label in order:
        assert label in text, label
    positions = [text.index(label) for label in order[:-1]]
    assert positions == sorted(positions)
    assert filled.client == {"client_name": "Quilla Testperson"}
    assert "Quilla" not in text  # the client's name travels in the case header only
    # Nothing but the drawn text: no annotations, no embedded files, no images, no scripts
    # (fpdf2's /OpenAction is a plain view destination: the first page, fit to width).
    reader = PdfReader(out)
    root = reader.trailer["/Root"]
    assert "/Names" not in root and "/AcroForm" not in root and "/Metadata" not in root
    assert str(root["/OpenAction"][1]) == "/FitH" and len(root["/OpenAction"]) == 3
    for page in reader.pages:
        assert "/Annots" not in page and not page.images


def test_values_are_plain_text_never_markup(tmp_path: Path) -> None:
    tricky = '<font color="white">hidden</font> **bold** ${x} \\u00a0'
    fields = tmp_path / "f.json"
    fields.write_text(json.dumps({"template": "handoff", "version": 1, "summary": {
        "treatments": [{"date": "2026-11-02", "what": "peel"}], "skin_type": tricky, "aftercare": "none"}}))
    out = tmp_path / "s.pdf"
    handoff.render(handoff.load_fields(fields, handoff.builtin_template()), out)
    assert '<font color="white">hidden</font> **bold** ${x}' in _text(out)


def test_the_rendered_summary_passes_the_gate_and_an_identifier_in_a_field_is_found(tmp_path: Path) -> None:
    fields = tmp_path / "fields.toml"
    fields.write_text(FIELDS)
    clean = tmp_path / "clean.pdf"
    handoff.render(handoff.load_fields(fields, handoff.builtin_template()), clean)
    result = redaction.gate(redaction.inspect_document(clean.read_bytes()))
    assert result.inspection.findings == () and result.override is None

    leaky = tmp_path / "leaky.toml"
    leaky.write_text(FIELDS.replace('contact = "The referring', 'contact = "Call +1 415 555 0134, the referring'))
    pdf = tmp_path / "leaky.pdf"
    handoff.render(handoff.load_fields(leaky, handoff.builtin_template()), pdf)
    with pytest.raises(redaction.RedactionBlocked) as caught:
        redaction.gate(redaction.inspect_document(pdf.read_bytes()))
    assert any(f.rule == "phone" for f in caught.value.blocking)


def test_a_clinic_version_of_the_template_adds_fields(tmp_path: Path) -> None:
    spec = json.loads(handoff.builtin_template_text())
    spec["version"] = 2
    spec["fields"].append({"name": "home_care_kit", "label": "Home-care kit handed out", "kind": "list"})
    template = tmp_path / "handoff-2.json"
    template.write_text(json.dumps(spec))
    loaded = handoff.load_template(template)
    assert loaded.ref == "handoff v2" and loaded.fields[-1].name == "home_care_kit"
    fields = tmp_path / "f.toml"
    fields.write_text(FIELDS.replace("version = 1", "version = 2").replace(
        "[summary]", '[summary]\nhome_care_kit = ["Made-up barrier cream sample"]'))
    out = tmp_path / "s.pdf"
    handoff.render(handoff.load_fields(fields, loaded), out)
    assert "Home-care kit handed out" in _text(out) and "Made-up barrier cream" in _text(out)
    # The same fields file against version 1 names the mismatch.
    with pytest.raises(HandoffError, match="not handoff v1"):
        handoff.load_fields(fields, handoff.builtin_template())


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace("[summary]", "[summary]\nfavourite_colour = \"blue\""), "not a field"),
    (lambda t: t.replace('skin_type = "Fitzpatrick III, combination (made up)"', ""), "skin_type .* is required"),
    (lambda t: t.replace('date = "2026-11-02"', 'date = "2026-13-02"'), r"treatments\[0\].date"),
    (lambda t: t.replace('date = "2026-11-02"', 'date = "next week"'), r"treatments\[0\].date"),
    (lambda t: t.replace('follow_up_interval = "4 weeks"', f'follow_up_interval = "{"x" * 201}"'),
     "longer than 200"),
    (lambda t: t.replace('products = [', 'products = "not a list"\nx = ['), "a list|not a field"),
    (lambda t: t.replace('skin_type = "Fitz', 'skin_type = "\\u0007Fitz'), "control characters"),
    (lambda t: t.replace('template = "handoff"', 'template = "other"'), "not handoff v1"),
    (lambda t: t.replace('[client]', '[client]\nbirthday = "1990-01-01"'), r"\[client\] holds only"),
    (lambda t: t + "\n[extra]\n", "template, version, \\[client\\] and \\[summary\\] only"),
    (lambda t: "{not json", "not TOML or JSON"),
])
def test_bad_fields_are_one_clear_error(tmp_path: Path, change, message: str) -> None:
    fields = tmp_path / "f.toml"
    fields.write_text(change(FIELDS))
    with pytest.raises(HandoffError, match=message):
        handoff.load_fields(fields, handoff.builtin_template())


def test_limits_on_files_and_templates(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (handoff.MAX_FILE_BYTES + 1))
    with pytest.raises(HandoffError, match="larger than 64 KiB"):
        handoff.load_fields(big, handoff.builtin_template())
    spec = json.loads(handoff.builtin_template_text())
    for bad, message in ((dict(spec, fields=[]), "1 to 50 fields"),
                         (dict(spec, fields=[{"name": "Bad Name", "label": "x"}]), "snake_case"),
                         (dict(spec, fields=[{"name": "a", "label": "x", "kind": "image"}]), "kind is one of"),
                         (dict(spec, fields=[{"name": "a", "label": "x"}] * 2), "snake_case"),
                         (dict(spec, version=0), "version"), (dict(spec, script="x"), "only")):
        with pytest.raises(HandoffError, match=message):
            handoff.parse_template(json.dumps(bad).encode(), "t.json")


def test_the_cli_writes_a_skeleton_that_renders_and_never_overwrites(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "carebridge.gateway.cli", "handoff"]
    skeleton = tmp_path / "fields.toml"
    made = subprocess.run([*run, "new", "-o", skeleton], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert "made-up" in skeleton.read_text()
    again = subprocess.run([*run, "new", "-o", skeleton], capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "exists" in again.stderr
    out = tmp_path / "summary.pdf"
    rendered = subprocess.run([*run, "render", skeleton, "-o", out], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    assert "made-up skin type" in _text(out) and "Testina" not in _text(out)
    skeleton.write_text(skeleton.read_text().replace('skin_type = "made-up skin type"', ""))
    refused = subprocess.run([*run, "render", skeleton, "-o", tmp_path / "x.pdf"], capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "skin_type" in refused.stderr
    assert not (tmp_path / "x.pdf").exists()
