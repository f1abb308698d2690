"""Time decrypting a large document in the page (headless Chromium) against ``carebridge fetch``.

    .venv/bin/python scripts/bench_web_decrypt.py [--size-mib 48] [--repeat 3]

Starts a ``carebridge serve`` on a free port (a throw-away data folder), makes
a clinic and a spa with the real CLI, and sends one synthetic PDF of about
``--size-mib`` MiB (a page of text and a photo-sized image of random pixels:
it passes the redaction gate, whose input limit is 50 MiB) with a link-key
link (the document is encrypted to the key after '#' alone). Then, in one run:

- the link page in Debian's ``chromium`` (Playwright): open (summary,
  manifest signature, meta decrypted with the key after '#'), then the click
  up to "Document saved" (claim, download over loopback, SHA-256 of the
  ciphertext against the manifest, age decryption with typage, SHA-256 of the
  plaintext, save); a fresh browser context each time;
- ``carebridge fetch --link URL`` of the same link (a process each: summary,
  signature, claim, download, decryption, verification, write);
- the JavaScript the link page loaded, raw and gzipped (budget 200 KiB).

Prints medians over ``--repeat`` runs and the page/CLI ratio. The machine is
shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from carebridge.gateway.server.web import DIST  # noqa: E402
from tests.test_e2e import Deployment, running_server  # noqa: E402

CLINIC, SPA = "Sunrise Dermatology BENCH", "Glow Spa BENCH"
UPLOADER, RECIPIENT = "dr.bench@sunrise.example.test", "esthetician.bench@glow.example.test"
JS_BUDGET_GZIP = 200 * 1024


def big_pdf(path: Path, size_mib: int) -> None:
    """A one-page PDF: a line of made-up text and an image of random pixels (incompressible)."""
    from fpdf import FPDF
    from PIL import Image

    side = int((size_mib * 1024 * 1024 / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "Synthetic large treatment summary for a benchmark. Nothing here is about a real person.")
    pdf.image(image, x=10, y=40, w=150)
    pdf.output(str(path))


def deploy(cli: Deployment, work: Path) -> tuple[dict, dict]:
    keys = {UPLOADER: work / "uploader.key", RECIPIENT: work / "spa.key"}
    jobs = [cli.start("keygen", "-o", keys[email]) for email in (UPLOADER, RECIPIENT)]
    cli.admin("init")
    for name, kind in ((CLINIC, "clinic"), (SPA, "spa")):
        cli.admin("org", "create", name, "--kind", kind)
    cli.admin("referral", "add", CLINIC, SPA)
    users = {email: cli.admin("user", "create", email, "--org", org, "--role", role)
             for email, org, role in ((UPLOADER, CLINIC, "uploader"), (RECIPIENT, SPA, "recipient"))}
    for job in jobs:
        job.json()
    people = {email: {"token": users[email]["token"], "identity": keys[email]} for email in keys}
    for email in keys:
        cli.ok_json("keys", "register", **people[email])
    return people[UPLOADER], people[RECIPIENT]


def in_page(browser, url: str, name: str, sha256: str) -> tuple[float, float, list[str]]:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(300_000)
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.url.endswith(".js") else None)
    try:
        start = time.perf_counter()
        page.goto(url)
        page.get_by_role("heading", name="A document is ready").wait_for()
        opened = time.perf_counter() - start
        start = time.perf_counter()
        with page.expect_download() as caught:
            page.get_by_role("button", name=f"Download and decrypt {name}").click()
        page.get_by_role("heading", name="Document saved").wait_for()
        decrypted = time.perf_counter() - start
        digest = hashlib.sha256(Path(caught.value.path()).read_bytes()).hexdigest()
        if digest != sha256:
            raise SystemExit("the page saved a file that differs from the one sent")
    finally:
        context.close()
    return opened, decrypted, scripts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=48, help="document size (the gate allows up to 50 MiB)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="carebridge-bench-web-"))
    try:
        with running_server(work / "var", work / "server.log") as url, sync_playwright() as playwright:
            cli = Deployment(work / "var", url, work)
            uploader, _ = deploy(cli, work)
            source = work / "bench-large-summary.pdf"
            big_pdf(source, args.size_mib)
            sent = cli.ok_json("send", source, "--to", RECIPIENT, "--link-key", "--link-uses", 2 * args.repeat,
                               "--max-downloads", 2 * args.repeat, **uploader)
            [link] = sent["links"]
            size = sent["size"]
            print(f"document: {size / 2**20:.1f} MiB PDF (sanitized), ciphertext sent once; "
                  f"{args.repeat} runs each")
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            opens, pages, fetches, scripts = [], [], [], []
            for number in range(args.repeat):  # interleaved: the same noise for both
                opened, decrypted, scripts = in_page(browser, link["url"], source.name, sent["sha256"])
                opens.append(opened)
                pages.append(decrypted)
                out = work / f"fetched-{number}.pdf"
                start = time.perf_counter()
                cli.ok_json("fetch", "--link", link["url"], "-o", out)
                fetches.append(time.perf_counter() - start)
                if hashlib.sha256(out.read_bytes()).hexdigest() != sent["sha256"]:
                    raise SystemExit("carebridge fetch wrote a file that differs from the one sent")
                out.unlink()
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    page_s, cli_s = statistics.median(pages), statistics.median(fetches)
    print(f"link page open (summary, signature, meta): {statistics.median(opens):.2f} s")
    print(f"in the page, click -> saved: {page_s:.2f} s ({size / 2**20 / page_s:.1f} MiB/s)")
    print(f"carebridge fetch:            {cli_s:.2f} s ({size / 2**20 / cli_s:.1f} MiB/s)")
    print(f"ratio page / CLI: {page_s / cli_s:.2f}x")
    loaded = sorted({u.rsplit("/", 1)[1] for u in scripts})
    raw = b"".join((DIST / name).read_bytes() for name in loaded)
    packed = len(gzip.compress(raw, compresslevel=9))
    print(f"JavaScript on the link page: {len(raw) / 1024:.0f} KiB, {packed / 1024:.0f} KiB gzipped "
          f"(budget {JS_BUDGET_GZIP // 1024} KiB): {', '.join(loaded)}")


if __name__ == "__main__":
    main()
