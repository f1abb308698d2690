"""The gate's limits in the page, where the page itself enforces them: a parse that runs over the
time limit ends with the CLI's words and a terminated Worker, and the same gate then checks the
next file in a fresh one; a heap that would grow past the memory limit ends with the CLI's words
too. (Limits the gate's Python enforces, such as pages or decoded bytes, are in the parity test.)"""

from __future__ import annotations

import base64
import urllib.request

import pytest

from carebridge.gateway.server.web import WORKER_CSP
from tests.gateway.client.redaction import pdfgen
from tests.test_e2e import running_server

from .conftest import require_bundle
from .gate_corpus import PUBLIC

pytestmark = pytest.mark.browser
TIMEOUT_MS = 180_000
# The corpus's largest file takes more than 5 s in CPython and longer in the page; a one-page
# summary a fraction of a second, several times that on a loaded 2-core machine.
TIME_LIMIT = 3.0
# Below the heap Pyodide needs to read that file (the ceiling applies after the gate has loaded).
MEMORY_LIMIT = 64 * 1024 * 1024

RUN = """async ({module, slow, quick, limits}) => {
  const {openGate, gateUrls} = await import(module);
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const gate = openGate(gateUrls(), {limits});
  await gate.load();
  const outcome = async (b64) => {
    try { const r = await gate.inspectPdf(bytes(b64)); return {ok: true, findings: r.findings.length}; }
    catch (e) { return {ok: false, name: e.name, code: e.code, message: e.message}; }
  };
  const started = performance.now();
  const first = await outcome(slow);
  const seconds = (performance.now() - started) / 1000;
  const then = await outcome(quick);
  gate.close();
  return {first, seconds, then};
}"""



@pytest.fixture(scope="module")
def served(tmp_path_factory):
    manifest = require_bundle()
    root = tmp_path_factory.mktemp("gate-limits")
    with running_server(root / "var", root / "server.log") as url:
        yield url, "/app/" + manifest["entries"]["gate.js"]


def _run(browser, served, limits: dict) -> dict:
    url, module = served
    slow = (PUBLIC / "GeoTopo-komprimiert.pdf").read_bytes()
    quick = pdfgen.summary(["Treatment summary (synthetic)", "Phone: (555) 010-1234"])
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url + "/send")
        return page.evaluate(RUN, {"module": module, "limits": limits,
                                   "slow": base64.b64encode(slow).decode(), "quick": base64.b64encode(quick).decode()})
    finally:
        context.close()


def test_over_the_time_limit_the_worker_is_stopped_and_the_next_file_works(browser, served) -> None:
    got = _run(browser, served, {"timeout_seconds": TIME_LIMIT})
    assert got["first"] == {"ok": False, "name": "GateError", "code": "limit",
                            "message": f"reading the PDF took longer than the limit of {TIME_LIMIT:g} s (--timeout)"}
    assert TIME_LIMIT <= got["seconds"] < TIME_LIMIT + 10  # ended at the limit, not when the parse would have
    assert got["then"] == {"ok": True, "findings": 1}  # a fresh Worker: the gate goes on working


def test_a_heap_past_the_memory_limit_ends_with_the_clis_words(browser, served) -> None:
    got = _run(browser, served, {"max_memory_bytes": MEMORY_LIMIT})
    assert got["first"] == {"ok": False, "name": "GateError", "code": "limit",
                            "message": "reading the PDF needs more memory than the limit of 64 MiB (--max-memory)"}


def test_only_the_gate_worker_may_compile_webassembly(served) -> None:
    url, _ = served
    manifest = require_bundle()

    def policy(path: str) -> str | None:
        with urllib.request.urlopen(url + path, timeout=30) as response:
            return response.headers.get("Content-Security-Policy")

    assert policy("/app/" + manifest["entries"]["gate.worker.js"]) == WORKER_CSP
    assert "'wasm-unsafe-eval'" in WORKER_CSP and "'unsafe-eval'" not in WORKER_CSP.replace("'wasm-unsafe-eval'", "")
    for page in ("/send", "/keys/new"):
        assert "wasm" not in policy(page) and "unsafe" not in policy(page)
    assert "wasm" not in (policy("/app/" + manifest["entries"]["send.js"]) or "")
