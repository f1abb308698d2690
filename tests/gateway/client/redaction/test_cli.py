"""``carebridge inspect``: report, JSON, exit status, one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from carebridge.gateway.client.redaction import cli

from . import hostile, pdfgen


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="carebridge")
    cli.add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    return args.run(args, {})


@pytest.fixture
def write(tmp_path: Path):
    def make(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return make


def test_clean_pdf_exits_0(write, capsys) -> None:
    path = write("clean.pdf", pdfgen.summary(["Follow-up in 4 weeks"], page_extra=b"/PieceInfo << >>"))
    assert _main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "application/pdf, 1 page(s)" in out and "removed-page-piece-data: 1" in out and "no findings" in out


def test_findings_exit_1_and_are_masked(write, capsys) -> None:
    path = write("s.pdf", pdfgen.summary(["SSN: 123-45-6789"], [pdfgen.BoxOver(0, 5, 16)]))
    assert _main(["inspect", path, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["file"] == path and report["kind"] == "pdf"
    assert {(f["rule"], f["snippet"]) for f in report["findings"]} == {
        ("fake-redaction", "***-**-6789"), ("ssn", "***-**-6789")}
    assert "123-45-6789" not in json.dumps(report)


def test_an_image_page_is_a_finding_explained(write, capsys) -> None:
    page = pdfgen.paint(b"Im1", 0, 0, pdfgen.PAGE_WIDTH, pdfgen.PAGE_HEIGHT)
    assert _main(["inspect", write("scan.pdf", pdfgen.with_images(page))]) == 1
    out = capsys.readouterr().out
    assert "page 1   unscannable-page         (image)" in out
    assert "unscannable-page: the page is an image; it cannot be checked for identifiers (no OCR)" in out


def test_an_image_file_is_refused(write, capsys) -> None:
    assert _main(["inspect", write("scan.pdf", b"\x89PNG\r\n\x1a\n" + bytes(64))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "images are refused (PNG image): there is no OCR" in err


def test_text_needs_the_flag(write, capsys) -> None:
    path = write("note.pdf", b"Phone: (555) 010-1234\n")  # the name does not matter
    assert _main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-text" in err
    assert _main(["inspect", path, "--allow-text"]) == 1
    assert "text     phone" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_2(write, capsys) -> None:
    assert _main(["inspect", write("e.pdf", hostile.encrypted())]) == 2
    assert capsys.readouterr().err.endswith("the PDF is encrypted; send an unencrypted copy\n")
    assert _main(["inspect", write("p.pdf", hostile.many_pages()), "--max-pages", "20"]) == 2
    assert "more pages than the limit of 20 pages (--max-pages)" in capsys.readouterr().err
    assert _main(["inspect", "/nonexistent/file.pdf"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert _main(["inspect", write("x.pdf", b"%PDF-1.7\n"), "--timeout", "0"]) == 2
    assert "timeout_seconds must be a positive number" in capsys.readouterr().err


def test_sizes_are_checked_before_reading_and_shown_in_human_units(write, capsys) -> None:
    path = write("big.txt", b"Follow-up in 4 weeks\n" * 600)  # 12.6 KiB of text
    assert _main(["inspect", path, "--allow-text", "--max-input-size", "8KiB"]) == 2
    assert capsys.readouterr().err.endswith(
        "the file is larger than the limit of 8 KiB (--max-input-size)\n")
    assert _main(["inspect", path, "--allow-text", "--max-text-size", "0.5 KiB"]) == 2
    assert capsys.readouterr().err.endswith("the text is larger than the limit of 512 bytes (--max-text-size)\n")
    assert _main(["inspect", path, "--allow-text", "--max-text-size", "13KiB"]) == 0


def test_a_bad_size_option_is_a_usage_error(write, capsys) -> None:
    with pytest.raises(SystemExit):
        _main(["inspect", write("a.txt", b"x"), "--max-text-size", "lots"])
    assert "not a size: 'lots'" in capsys.readouterr().err
