"""Fake redactions in named colour spaces: ICC-based, Separation, DeviceN and Indexed.

Each test file is made here: the summary of test_fake_redaction, with the
colour of its text or of a box set by ``cs``/``scn`` in a space the page's
resources name (``/Resources /ColorSpace``). White text, text in the colour
of the box under it, text of the colorant /None and dark boxes must be caught
as in the device spaces; coloured text on the white page must not.
"""

from __future__ import annotations

import pytest

from carebridge.gateway.client.redaction import FAKE_REDACTION, inspect_document

from . import pdfgen
from .pdfgen import BoxOver

LINES = ["Treatment summary (synthetic)", "SSN: 123-45-6789", "Chemical peel, 30% salicylic acid"]
SSN = "***: ***-**-6789"  # the whole second line, masked
# Object 6 (after the page and its content): an ICC profile stream, only its /N is read.
ICC = {1: pdfgen.stream(b"(profile bytes)", b"/N 1"), 3: pdfgen.stream(b"(profile bytes)", b"/N 3"),
       4: pdfgen.stream(b"(profile bytes)", b"/N 4")}
SPACES = {
    "icc-gray": b"[/ICCBased 6 0 R]",
    "icc-rgb": b"[/ICCBased 6 0 R]",
    "icc-cmyk": b"[/ICCBased 6 0 R]",
    # A spot colour "Example Blue": tint t -> CMYK (t, 0.7t, 0, 0.1t), an exponential function.
    "separation": b"[/Separation /ExampleBlue /DeviceCMYK << /FunctionType 2 /Domain [0 1]"
                  b" /C0 [0 0 0 0] /C1 [1 0.7 0 0.1] /N 1 >>]",
    # A PostScript transform (type 4): not evaluated; tint 0 is still the paper's white.
    "separation-ps": b"[/Separation /ExampleGold /DeviceCMYK 6 0 R]",
    "devicen": b"[/DeviceN [/Cyan /ExampleBlue] /DeviceCMYK 6 0 R]",
    "none": b"[/Separation /None /DeviceGray << /FunctionType 2 /Domain [0 1] /C0 [1] /C1 [0] /N 1 >>]",
    "indexed": b"[/Indexed /DeviceRGB 2 <000000FFFFFF3366CC>]",
}
PS_FUNCTION = pdfgen.stream(b"{ dup 0.2 mul exch dup 0.1 mul exch 0 exch 0.9 mul }",
                            b"/FunctionType 4 /Domain [0 1 0 1] /Range [0 1 0 1 0 1 0 1]")


def _pdf(space: str, content: bytes, icc: int = 3) -> bytes:
    extra = [ICC[icc] if space.startswith("icc") else PS_FUNCTION]
    return pdfgen.document([content], resources_extra=b"/ColorSpace << /CS0 %s >>" % SPACES[space],
                           extra_objects=extra)


def _text(space: str, colour: bytes, icc: int = 3) -> bytes:
    """LINES[0] in black, then LINES[1] in *colour* of the space /CS0."""
    shown = pdfgen.text_ops(LINES[:1]) + b"\n/CS0 cs " + colour + b" scn\n" + pdfgen.text_ops(["", LINES[1]])
    return _pdf(space, shown, icc)


def _fakes(pdf: bytes) -> list[str]:
    return [f.snippet for f in inspect_document(pdf).findings if f.rule == FAKE_REDACTION]


@pytest.mark.parametrize(("space", "white", "icc"), [
    ("icc-gray", b"1", 1), ("icc-rgb", b"1 1 1", 3), ("icc-cmyk", b"0 0 0 0", 4),
    ("separation", b"0", 3), ("separation-ps", b"0", 3), ("devicen", b"0 0", 3), ("indexed", b"1", 3),
])
def test_white_text_in_a_named_space_is_caught(space: str, white: bytes, icc: int) -> None:
    assert _fakes(_text(space, white, icc)) == [SSN]


@pytest.mark.parametrize(("space", "dark", "icc"), [
    ("icc-gray", b"0.2", 1), ("icc-rgb", b"0.1 0.2 0.6", 3), ("icc-cmyk", b"0 0.5 1 0", 4),
    ("separation", b"1", 3), ("separation-ps", b"1", 3), ("devicen", b"1 0.5", 3), ("indexed", b"2", 3),
])
def test_coloured_text_in_a_named_space_is_seen(space: str, dark: bytes, icc: int) -> None:
    assert _fakes(_text(space, dark, icc)) == []


def test_text_of_the_colorant_none_is_caught() -> None:
    assert _fakes(_text("none", b"1")) == [SSN]


@pytest.mark.parametrize(("space", "ink", "icc"), [
    ("icc-gray", b"0", 1), ("icc-rgb", b"0.05 0.05 0.1", 3), ("icc-cmyk", b"0 0 0 1", 4),
    ("separation", b"1", 3), ("separation-ps", b"1", 3), ("devicen", b"1 1", 3), ("indexed", b"0", 3),
])
def test_a_dark_box_in_a_named_space_is_caught(space: str, ink: bytes, icc: int) -> None:
    box = BoxOver(line=1, start=5, end=16, colour=b"/CS0 cs " + ink + b" scn")
    assert _fakes(_pdf(space, pdfgen.text_ops(LINES) + b"\n" + box.ops(), icc)) == ["***-**-6789"]


@pytest.mark.parametrize(("space", "light", "icc"), [
    ("icc-gray", b"0.95", 1), ("separation", b"0.1", 3), ("separation-ps", b"0", 3), ("indexed", b"1", 3),
])
def test_a_light_box_in_a_named_space_is_not_a_redaction(space: str, light: bytes, icc: int) -> None:
    box = BoxOver(line=1, start=5, end=16, colour=b"/CS0 cs " + light + b" scn")
    assert _fakes(_pdf(space, pdfgen.text_ops(LINES) + b"\n" + box.ops(), icc)) == []


def test_text_in_the_spot_colour_of_the_box_under_it_is_caught() -> None:
    box = b"q /CS0 cs 0.3 scn 72 698 300 16 re f Q\n"
    same = _pdf("separation", box + b"/CS0 cs 0.3 scn\n" + pdfgen.text_ops(LINES))
    assert "***-**-6789" in " ".join(_fakes(same))
    seen = _pdf("separation", box + b"/CS0 cs 1 scn\n" + pdfgen.text_ops(LINES))
    assert _fakes(seen) == []
