"""The handoff template: a structured treatment summary rendered to a clean PDF here.

A clinic fills in the fields of a **template** (the built-in
``templates/handoff-1.json``, or its own version with more fields: templates
are data) in a TOML or JSON **fields file**; :func:`render` draws them, and
nothing else, as plain text on plain pages. A document made from fields has
no hidden layers, annotations, scripts, images or metadata to leak; it still
goes through the redaction gate, encryption and signing like any other
(``carebridge send --handoff FILE``), so an identifier typed into a field is
found like one in any PDF.

A fields file::

    template = "handoff"
    version = 1

    [client]            # optional: `case open --header` encrypts it into the case header;
    client_name = "…"   # never drawn into the PDF
    contact = "…"
    reason = "…"

    [summary]
    skin_type = "Fitzpatrick III, combination"
    aftercare = "…"
    products = ["…", "…"]
    [[summary.treatments]]
    date = "2026-11-02"
    what = "…"

Field kinds: ``text`` (a paragraph; line breaks kept), ``list`` (strings),
``dated`` (tables of ``date`` YYYY-MM-DD and ``what``). Every input has a
limit (file size, fields, items, characters); an error is one line naming the
field.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path

MAX_FILE_BYTES = 64 * 1024  # a template or a fields file
MAX_FIELDS = 50
MAX_ITEMS = 100  # entries of one list or dated field
MAX_LABEL = 120
DEFAULT_MAX_CHARS = 2000  # a text field, or one entry of a list
MAX_CHARS = 20_000
KINDS = ("text", "list", "dated")
CLIENT_FIELDS = ("client_name", "contact", "reason")
MAX_CLIENT_CHARS = 500  # each of them
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_TEMPLATE_ID = re.compile(r"[a-z][a-z0-9-]{0,39}")
FONT_FILES = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
              Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"))  # Debian fonts-dejavu-core


class HandoffError(ValueError):
    """A template, a fields file or a value that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: str
    required: bool
    max_chars: int


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    version: int
    title: str
    fields: tuple[Field, ...]

    @property
    def ref(self) -> str:
        return f"{self.id} v{self.version}"


@dataclass(frozen=True, slots=True)
class Filled:
    """A fields file, checked against its template."""

    template: Template
    summary: dict[str, object]  # field name -> str | list[str] | list[tuple[date, str]]
    client: dict[str, str]  # for the case header only


def builtin_template_text() -> str:
    """The built-in template's JSON: a starting point for a clinic's own version."""
    return resources.files("carebridge.gateway.client").joinpath("templates/handoff-1.json").read_text()


def builtin_template() -> Template:
    return parse_template(builtin_template_text().encode(), "the built-in template")


def load_template(path: Path | None) -> Template:
    return builtin_template() if path is None else parse_template(_read(path), str(path))


def parse_template(raw: bytes, where: str) -> Template:
    body = _decode(raw, where)
    if not isinstance(body, dict) or set(body) - {"id", "version", "title", "fields"}:
        raise HandoffError(f"{where}: a template has id, version, title and fields only")
    tid, version, title, fields = body.get("id"), body.get("version"), body.get("title"), body.get("fields")
    if not isinstance(tid, str) or not _TEMPLATE_ID.fullmatch(tid):
        raise HandoffError(f"{where}: id is lower-case letters, digits and dashes (at most 40)")
    if type(version) is not int or not 1 <= version <= 10_000:
        raise HandoffError(f"{where}: version is a whole number from 1 to 10000")
    if not isinstance(title, str) or not 0 < len(title) <= MAX_LABEL:
        raise HandoffError(f"{where}: title is text of 1 to {MAX_LABEL} characters")
    if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
        raise HandoffError(f"{where}: fields is a list of 1 to {MAX_FIELDS} fields")
    parsed: list[Field] = []
    for n, spec in enumerate(fields):
        at = f"{where}: fields[{n}]"
        if not isinstance(spec, dict) or set(spec) - {"name", "label", "kind", "required", "max_chars"}:
            raise HandoffError(f"{at}: a field has name, label, kind, required and max_chars only")
        name, label = spec.get("name"), spec.get("label")
        kind, required = spec.get("kind", "text"), spec.get("required", False)
        max_chars = spec.get("max_chars", DEFAULT_MAX_CHARS)
        if not isinstance(name, str) or not _NAME.fullmatch(name) or any(f.name == name for f in parsed):
            raise HandoffError(f"{at}: name is a new snake_case word (at most 40 characters)")
        if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL:
            raise HandoffError(f"{at}: label is text of 1 to {MAX_LABEL} characters")
        if kind not in KINDS:
            raise HandoffError(f"{at}: kind is one of {', '.join(KINDS)}")
        if type(required) is not bool:
            raise HandoffError(f"{at}: required is true or false")
        if type(max_chars) is not int or not 1 <= max_chars <= MAX_CHARS:
            raise HandoffError(f"{at}: max_chars is a whole number from 1 to {MAX_CHARS}")
        parsed.append(Field(name, label, kind, required, max_chars))
    return Template(tid, version, title, tuple(parsed))


def load_fields(path: Path, template: Template) -> Filled:
    return parse_fields(_read(path), str(path), template)


def parse_fields(raw: bytes, where: str, template: Template) -> Filled:
    body = _decode(raw, where)
    if not isinstance(body, dict) or set(body) - {"template", "version", "client", "summary"}:
        raise HandoffError(f"{where}: a fields file has template, version, [client] and [summary] only")
    if (body.get("template"), body.get("version")) != (template.id, template.version):
        raise HandoffError(f"{where}: written for template {body.get('template')!s:.40} v{body.get('version')!s:.10},"
                           f" not {template.ref} (pass --template FILE for another)")
    client = body.get("client", {})
    if (not isinstance(client, dict) or not set(client) <= set(CLIENT_FIELDS)
            or not all(isinstance(v, str) and len(v) <= MAX_CLIENT_CHARS for v in client.values())):
        raise HandoffError(f"{where}: [client] holds only the texts {', '.join(CLIENT_FIELDS)}"
                           f" ({MAX_CLIENT_CHARS} characters each)")
    summary = body.get("summary")
    if not isinstance(summary, dict):
        raise HandoffError(f"{where}: no [summary] table")
    known = {f.name: f for f in template.fields}
    for name in summary:
        if name not in known:
            raise HandoffError(f"{where}: summary.{name!s:.40} is not a field of {template.ref}")
    values: dict[str, object] = {}
    for spec in template.fields:
        value = summary.get(spec.name)
        if value is None or value == "" or value == []:
            if spec.required:
                raise HandoffError(f"{where}: summary.{spec.name} ({spec.label}) is required")
            continue
        values[spec.name] = _value(spec, value, f"{where}: summary.{spec.name}")
    return Filled(template, values, dict(client))


def _value(spec: Field, value: object, at: str) -> object:
    if spec.kind == "text":
        return _text(value, spec.max_chars, at)
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise HandoffError(f"{at}: a list of at most {MAX_ITEMS} entries")
    if spec.kind == "list":
        return [_text(item, spec.max_chars, f"{at}[{n}]") for n, item in enumerate(value)]
    dated = []
    for n, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"date", "what"}:
            raise HandoffError(f"{at}[{n}]: an entry has date (YYYY-MM-DD) and what")
        when = item["date"]
        if isinstance(when, str):
            try:
                when = date.fromisoformat(when) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", when) else None
            except ValueError:
                when = None
        if type(when) is not date:
            raise HandoffError(f"{at}[{n}].date: a date, YYYY-MM-DD")
        dated.append((when, _text(item["what"], spec.max_chars, f"{at}[{n}].what")))
    return dated


def _text(value: object, limit: int, at: str) -> str:
    if not isinstance(value, str):
        raise HandoffError(f"{at}: text")
    if len(value) > limit:
        raise HandoffError(f"{at}: longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) < 0xA0 for c in value):
        raise HandoffError(f"{at}: control characters are not allowed")
    return value.strip()


def render(filled: Filled, out: Path, *, case_ref: str | None = None) -> None:
    """Draw the summary's fields, labelled, in the template's order, into a new PDF at *out*.

    Values are drawn as plain text (no markup is interpreted). The client's fields
    are never drawn: they travel in the case header. Raises HandoffError for a
    character the font cannot draw.
    """
    from fpdf import FPDF
    from fpdf.errors import FPDFException

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    regular, bold = FONT_FILES
    if regular.is_file() and bold.is_file():
        pdf.add_font("body", "", str(regular))
        pdf.add_font("body", "B", str(bold))
        family = "body"
    else:  # the PDF core font: Latin-1 only
        family = "Helvetica"
    pdf.set_title(filled.template.title)
    pdf.set_creator(f"carebridge handoff ({filled.template.ref})")
    pdf.set_producer("carebridge")
    pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=timezone.utc))  # when it was made is nobody's business
    try:
        pdf.add_page()
        pdf.set_font(family, "B", 16)
        pdf.multi_cell(0, 9, filled.template.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 9)
        line = f"Template {filled.template.ref}" + (f" · case {case_ref}" if case_ref else "")
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
        for spec in filled.template.fields:
            if spec.name not in filled.summary:
                continue
            pdf.ln(4)
            pdf.set_font(family, "B", 11)
            pdf.multi_cell(0, 6, spec.label, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(family, "", 11)
            value = filled.summary[spec.name]
            if spec.kind == "text":
                lines = [str(value)]
            elif spec.kind == "list":
                lines = [f"- {item}" for item in value]  # type: ignore[union-attr]
            else:
                lines = [f"{when.isoformat()}: {what}" for when, what in value]  # type: ignore[union-attr]
            for text in lines:
                pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        out.write_bytes(bytes(pdf.output()))
    except (FPDFException, UnicodeEncodeError) as exc:
        raise HandoffError(f"cannot draw the summary: {str(exc)[:120]}") from None


def skeleton(template: Template) -> str:
    """A fields file to fill in, with made-up example values that say so."""
    out = [f'template = "{template.id}"', f"version = {template.version}", "",
           "# Optional: `carebridge case open --header THIS_FILE` encrypts these into the case header.",
           "# They are never drawn into the summary PDF.",
           "[client]", 'client_name = "Testina Madeup"', 'contact = "testina.madeup@example.invalid"',
           'reason = "aftercare after a synthetic peel"', "", "[summary]"]
    tables = []
    for spec in template.fields:
        need = "required" if spec.required else "optional"
        if spec.kind == "text":
            out.append(f"# {spec.label} ({need}, at most {spec.max_chars} characters)")
            out.append(f'{spec.name} = "made-up {spec.label.lower()}"')
        elif spec.kind == "list":
            out.append(f"# {spec.label} ({need}, a list)")
            out.append(f'{spec.name} = ["made-up entry one", "made-up entry two"]')
        else:
            tables += [f"# {spec.label} ({need}: one [[summary.{spec.name}]] table per entry)",
                       f"[[summary.{spec.name}]]", 'date = "2026-01-02"', 'what = "made-up entry"', ""]
    return "\n".join(out + [""] + tables)


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise HandoffError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise HandoffError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB")
    return raw


def _decode(raw: bytes, where: str) -> object:
    try:
        text = raw.decode()
        return json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, tomllib.TOMLDecodeError):
        raise HandoffError(f"{where}: not TOML or JSON (UTF-8)") from None
