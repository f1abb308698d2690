"""Time sending from the page (headless Chromium) against ``carebridge send`` (#14 figures).

    .venv/bin/python scripts/bench_web_send.py [--size-mib 20] [--repeat 1]

Starts a ``carebridge serve`` on a free port (a throw-away data folder) with a
clinic uploader (TOTP) and a spa person, made as tests/web/test_send_upload.py
makes them. For a clean 5-page summary and a PDF of about ``--size-mib`` MiB (a
page of text and an image of random pixels), in one run:

- the gate's first use in a fresh browser context (empty cache): page opened
  to the first verdict (Pyodide fetched and started, the file checked);
- in the page: the same file chosen again -> the verdict (sanitize + scan with
  the gate loaded), then "Encrypt, sign and send" -> "Sent" (key file unlocked
  with scrypt, recipients' keys already checked, encrypt, sign, upload);
- ``carebridge send FILE --to RECIPIENT`` of the same file (a process each).

The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_web_decrypt import big_pdf  # noqa: E402
from tests.test_e2e import Deployment, running_server  # noqa: E402
from tests.web.test_send_upload import FILE_NAME, RECIPIENT, UPLOADER, enrolled, fill_form, signed_in  # noqa: E402

TIMEOUT_MS = 600_000


def five_pages(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for page in range(1, 6):
        pdf.add_page()
        for line in range(30):
            pdf.cell(0, 7, f"Synthetic summary, page {page}, line {line + 1}: chemical peel, two layers.",
                     new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def in_page(browser, site, source: Path) -> tuple[float, float, float]:
    """(page opened -> first verdict, the gate loaded; the gate again, warm; send -> Sent) in seconds,
    a fresh browser context (empty cache) each time."""
    context, page, _ = signed_in(browser, site)
    page.set_default_timeout(TIMEOUT_MS)
    try:
        opened = time.perf_counter()
        page.goto(site.url + "/send")
        page.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": source.read_bytes()})
        page.get_by_role("heading", name="No findings").wait_for()
        checked = time.perf_counter()
        # The same file again: the gate is loaded now (sanitize + scan alone).
        first = page.get_by_role("heading", name="No findings").element_handle()
        page.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": source.read_bytes()})
        first.wait_for_element_state("hidden")  # the first verdict's page was replaced
        page.get_by_role("heading", name="No findings").wait_for()
        warm = time.perf_counter() - checked
        page.get_by_role("button", name="Continue: recipients and sending").click()
        page.locator("form.send").wait_for()
        fill_form(page, site)
        sending = time.perf_counter()
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        sent = time.perf_counter()
    finally:
        context.close()
    return checked - opened, warm, sent - sending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="carebridge-bench-send-"))
    try:
        with running_server(work / "var", work / "server.log") as url, sync_playwright() as playwright:
            site = enrolled(Deployment(work / "var", url, work), url, work)
            files = {"5-page summary": work / "five-pages.pdf", f"{args.size_mib} MiB PDF": work / "large.pdf"}
            five_pages(files["5-page summary"])
            big_pdf(files[f"{args.size_mib} MiB PDF"], args.size_mib)
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            for label, source in files.items():
                firsts, gates, sends, clis = [], [], [], []
                for _ in range(args.repeat):
                    first, gated, sent = in_page(browser, site, source)
                    firsts.append(first)
                    gates.append(gated)
                    sends.append(sent)
                    start = time.perf_counter()
                    site.cli.ok_json("send", source, "--to", RECIPIENT, token=site.tokens[UPLOADER],
                                     identity=site.keys[UPLOADER])
                    clis.append(time.perf_counter() - start)
                page_s, cli_s = statistics.median(gates) + statistics.median(sends), statistics.median(clis)
                print(f"{label} ({source.stat().st_size / 2**20:.1f} MiB): page opened -> verdict "
                      f"{statistics.median(firsts):.2f} s; in the page gate (loaded) {statistics.median(gates):.2f} s + "
                      f"encrypt/sign/upload {statistics.median(sends):.2f} s = {page_s:.2f} s; "
                      f"carebridge send {cli_s:.2f} s; ratio {page_s / cli_s:.2f}x")
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
