"""Time the redaction gate in the page (Pyodide, headless Chromium) against ``carebridge inspect``.

    .venv/bin/python scripts/bench_gate_page.py [--repeat N]

Starts a ``carebridge serve`` on a free port (a throw-away data folder) and
Debian's ``chromium`` through Playwright, and measures, in one run:

- the gate's first use in the page: a fresh browser context (empty cache:
  Pyodide's ~12 MB are downloaded) and a new page in a warm one (files from
  the HTTP cache, Python started again), each up to the result for a one-page PDF;
- inspecting a 5-page synthetic summary and the largest PDF of the gate's test
  corpus in a loaded page (the send page: choose the file -> findings shown);
- the same files with ``carebridge inspect`` (a process each, as a sender runs
  it) and with ``inspect_document`` (the CLI's call, its parsing child included).

Prints medians over ``--repeat`` runs and the page/CLI ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from carebridge.gateway.client.redaction import inspect_document  # noqa: E402
from tests.gateway.client.redaction import pdfgen  # noqa: E402
from tests.gateway.client.redaction.corpus import clean_summary  # noqa: E402
from tests.test_e2e import running_server  # noqa: E402
from tests.web.gate_corpus import fake_redactions, generated, public  # noqa: E402

CARE = ROOT / ".venv" / "bin" / "carebridge"
CHECKING = "Checking the file"
TIMEOUT_MS = 300_000


def check_in_page(page, name: str, data: bytes) -> float:
    start = time.perf_counter()
    page.locator("#file").set_input_files({"name": name, "mimeType": "application/pdf", "buffer": data})
    page.locator(f"#app:not([data-state={CHECKING!r}])").wait_for(timeout=TIMEOUT_MS)
    seconds = time.perf_counter() - start
    if page.locator("#app [role=alert]").count():
        raise SystemExit(f"the page refused {name}: {page.locator('#app [role=alert]').inner_text()}")
    return seconds


def first_use(context, url: str, data: bytes) -> float:
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url + "/send")
    check_in_page(page, "one-page.pdf", data)
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def cli_seconds(path: Path, repeat: int) -> tuple[float, float]:
    process, call = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([str(CARE), "inspect", str(path)], stdout=subprocess.DEVNULL, check=False)
        process.append(time.perf_counter() - start)
        start = time.perf_counter()
        inspect_document(path.read_bytes())
        call.append(time.perf_counter() - start)
    return statistics.median(process), statistics.median(call)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-gate-page-"))
    one_page = pdfgen.summary(clean_summary(1))
    files = {"5-page summary": pdfgen.document([pdfgen.text_ops(clean_summary(s)) for s in range(5)])}
    name, largest = max([*generated(), *fake_redactions(), *public()], key=lambda f: len(f[1]))
    files[f"largest: {name}"] = largest
    rows = []
    try:
        with running_server(work / "var", work / "server.log") as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            cold, warm = [], []
            for _ in range(args.repeat):
                context = browser.new_context()
                cold.append(first_use(context, url, one_page))
                warm.append(first_use(context, url, one_page))
                context.close()
            print(f"first use, 1-page PDF: cold (empty cache) {statistics.median(cold):.2f} s, "
                  f"warm (HTTP cache) {statistics.median(warm):.2f} s  (medians of {args.repeat})")
            context = browser.new_context()
            page = context.new_page()
            page.goto(url + "/send")
            check_in_page(page, "warm-up.pdf", one_page)
            for label, data in files.items():
                path = work / "file.pdf"
                path.write_bytes(data)
                in_page = statistics.median(check_in_page(page, "f.pdf", data) for _ in range(args.repeat))
                process, call = cli_seconds(path, args.repeat)
                rows.append((label, len(data), inspect_document(data).pages, in_page, process, call))
            context.close()
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'file':<48}{'bytes':>10}{'pages':>6}{'page s':>9}{'CLI s':>8}{'call s':>8}{'page/CLI':>9}")
    for label, size, pages, in_page, process, call in rows:
        print(f"{label[:47]:<48}{size:>10}{pages:>6}{in_page:>9.2f}{process:>8.2f}{call:>8.2f}"
              f"{in_page / process:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
