"""The handoff template in the web page: the entry point the gate Worker calls (in Pyodide).

The send page's form (``gateway/web/src/handoff.js``) is built from a template
checked here, and its fields are checked and drawn here by the CLI's own
:func:`~.handoff.parse_fields` and :func:`~.handoff.render`, with the CLI's fonts
(``scripts/build_web.py`` packs them, pinned), so the page's PDF is byte for byte
the one ``carebridge handoff render`` writes from the same fields, and a refusal
is the CLI's one line naming the field. Call :func:`install` once, in the page's
interpreter only: it writes the fonts where the CLI finds them.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import urllib.request
from dataclasses import asdict
from pathlib import Path

from .handoff import (CLIENT_FIELDS, FONT_FILES, MAX_CLIENT_CHARS, MAX_FILE_BYTES, MAX_ITEMS, HandoffError,
                      Template, builtin_template, parse_fields, parse_template, render)

WHERE = "form"  # the fields file's name in a refusal: "form: summary.skin_type: longer than 200 characters"
_FIELD = re.compile(r"\bsummary\.([a-z][a-z0-9_]*)")
_OUT = Path("/tmp/handoff.pdf")  # Pyodide's file system lives in the Worker's memory


def install(fonts: str) -> None:
    """Copy the packed fonts (*fonts*/NAME) to the paths :func:`~.handoff.render` draws with,
    and give fpdf2 the HTTPS classes it subclasses at import (Pyodide has no ssl)."""
    for target in FONT_FILES:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(fonts) / target.name, target)
    _refuse_https()
    import fpdf  # noqa: F401  (most of a first drawing's time: paid while the form loads, not on "Draw")


def _refuse_https() -> None:
    """fpdf2 fetches images from URLs over HTTPS; a handoff has no images, and the Worker may reach
    nothing but its origin: the stand-ins refuse to be made."""
    def refuse(*_args, **_kwargs):
        raise OSError("the handoff renderer fetches nothing")

    if not hasattr(http.client, "HTTPSConnection"):
        http.client.HTTPSConnection = type("HTTPSConnection", (http.client.HTTPConnection,), {"__init__": refuse})
    if not hasattr(urllib.request, "HTTPSHandler"):
        urllib.request.HTTPSHandler = type("HTTPSHandler", (urllib.request.BaseHandler,), {"__init__": refuse})


def template_json(raw: str | None) -> str:
    """The template the form is built from (the built-in one, or a clinic's own JSON), checked,
    with every default filled in, and the limits the form shows."""
    try:
        template = _template(raw)
    except HandoffError as exc:
        return json.dumps({"ok": False, "message": str(exc)})
    return json.dumps({"ok": True, "template": asdict(template), "client_fields": CLIENT_FIELDS,
                       "max_client_chars": MAX_CLIENT_CHARS, "max_items": MAX_ITEMS})


def render_json(fields: str, raw_template: str | None) -> tuple[str, bytes]:
    """(answer JSON, the PDF or b""): the form's fields (a JSON fields file) drawn as the CLI draws them.

    A refusal answers ``{"ok": false, "message", "field"}``: the CLI's line and the field it names (or null).
    """
    try:
        template = _template(raw_template)
        render(parse_fields(_limited(fields, WHERE), WHERE, template), _OUT)
        return json.dumps({"ok": True}), _OUT.read_bytes()
    except HandoffError as exc:
        named = _FIELD.search(str(exc))
        return json.dumps({"ok": False, "message": str(exc), "field": named and named.group(1)}), b""
    finally:
        _OUT.unlink(missing_ok=True)


def _template(raw: str | None) -> Template:
    return builtin_template() if raw is None else parse_template(_limited(raw, "your template"), "your template")


def _limited(text: str, where: str) -> bytes:
    """The CLI's limit on a template or a fields file, on the page's text."""
    raw = text.encode()
    if len(raw) > MAX_FILE_BYTES:
        raise HandoffError(f"{where}: larger than {MAX_FILE_BYTES // 1024} KiB")
    return raw
