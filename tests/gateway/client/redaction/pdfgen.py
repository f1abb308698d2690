"""Synthetic PDFs for the redaction tests, written byte by byte (no reportlab).

Every document is obviously synthetic: "Test Patient", 555-01xx numbers,
example.com addresses, 192.0.2.x hosts, SSNs of the 123-45-6789 kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Lines start here and step down the page (points, on US Letter).
LEFT, TOP, LEADING, FONT_SIZE = 72, 720, 16, 11
# Helvetica's digit advance (556/1000 em), for placing boxes over text.
DIGIT_EM = 0.556
# US Letter, in points.
PAGE_WIDTH, PAGE_HEIGHT = 612, 792
# Samples of a 2x2 RGB image: red, green / blue, white.
RGB_2X2 = b"\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\xff"
# The same image inline (BI ... ID ... EI), with the abbreviated keys inline images use.
INLINE_RGB_2X2 = b"BI /W 2 /H 2 /CS /RGB /BPC 8 ID " + RGB_2X2 + b" EI"
# A letterhead logo: 1% of the page.
LOGO_SIZE = 72


def escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def assemble(objects: Sequence[bytes], *, trailer: bytes = b"", root: int = 1) -> bytes:
    """A PDF of *objects* (numbered from 1) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, trailer, xref)
    return bytes(out)


def stream(data: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), entries, data)


def text_ops(lines: Sequence[str]) -> bytes:
    """Content operators showing *lines* in 11 pt Helvetica, one under the other."""
    ops = [b"BT /F1 %d Tf %d TL %d %d Td" % (FONT_SIZE, LEADING, LEFT, TOP)]
    for line in lines:
        ops.append(b"(%s) Tj T*" % escape(line))
    ops.append(b"ET")
    return b"\n".join(ops)


@dataclass(frozen=True)
class BoxOver:
    """A filled box over characters [start, end) of line *line* (in Helvetica digit widths)."""

    line: int
    start: int
    end: int
    colour: bytes = b"0 0 0 rg"

    def ops(self) -> bytes:
        x0 = LEFT + self.start * DIGIT_EM * FONT_SIZE
        width = (self.end - self.start) * DIGIT_EM * FONT_SIZE
        y = TOP - self.line * LEADING - 3
        return b"q %s %.2f %d %.2f %d re f Q" % (self.colour, x0, y, width, FONT_SIZE + 3)


def document(pages: Sequence[bytes], *, page_extra: bytes = b"", catalog_extra: bytes = b"",
             resources_extra: bytes = b"", extra_objects: Sequence[bytes] = (), trailer: bytes = b"",
             resources: bytes | None = None) -> bytes:
    """A PDF whose pages show the content streams *pages*; object numbers:
    1 catalog, 2 page tree, 3 font, then (page, content) pairs, then *extra_objects*.
    Each page's resources are *resources* when given (``N 0 R`` to share one dictionary)."""
    n = len(pages)
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog_extra,
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    if resources is None:
        resources = b"<< /Font << /F1 3 0 R >> %s >>" % resources_extra
    for i, content in enumerate(pages):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
                       b" /Resources %s %s >>" % (5 + 2 * i, resources, page_extra))
        objects.append(stream(content))
    return assemble(objects + list(extra_objects), trailer=trailer)


def summary(lines: Sequence[str], boxes: Sequence[BoxOver] = (), **kwargs) -> bytes:
    """A one-page summary showing *lines*, with *boxes* painted over it afterwards."""
    content = text_ops(lines) + b"\n" + b"\n".join(box.ops() for box in boxes)
    return document([content], **kwargs)


def image(samples: bytes = RGB_2X2) -> bytes:
    """A 2x2 RGB image XObject of raw (unfiltered) samples."""
    return stream(samples, b"/Type /XObject /Subtype /Image /Width 2 /Height 2"
                           b" /ColorSpace /DeviceRGB /BitsPerComponent 8")


def paint(name: bytes, x: float, y: float, width: float, height: float) -> bytes:
    """Operators painting XObject *name* into the rectangle (an image fills the unit square)."""
    return b"q %.2f 0 0 %.2f %.2f %.2f cm /%s Do Q" % (width, height, x, y, name)


def with_images(content: bytes, images: int = 1) -> bytes:
    """A one-page PDF showing *content*, with 2x2 images /Im1, /Im2, ... in its resources."""
    x = first_free_object(1)
    names = b" ".join(b"/Im%d %d 0 R" % (i + 1, x + i) for i in range(images))
    return document([content], resources_extra=b"/XObject << %s >>" % names,
                    extra_objects=[image()] * images)


def logo_summary(lines: Sequence[str]) -> bytes:
    """A one-page summary with a small logo (LOGO_SIZE points square) in the top right corner."""
    return with_images(paint(b"Im1", PAGE_WIDTH - LEFT - LOGO_SIZE, PAGE_HEIGHT - 36 - LOGO_SIZE, LOGO_SIZE, LOGO_SIZE)
                       + b"\n" + text_ops(lines))


def first_free_object(pages: int) -> int:
    """The number *extra_objects* of :func:`document` start at."""
    return 4 + 2 * pages


def append_revision(pdf: bytes, objects: dict[int, bytes], *, trailer: bytes = b"") -> bytes:
    """*pdf* with an incremental update replacing or adding *objects* (by number)."""
    previous = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    size = int(pdf.rsplit(b"/Size", 1)[1].split()[0])
    out = bytearray(pdf)
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n"
    for number, offset in sorted(offsets.items()):
        out += b"%d 1\n%010d 00000 n \n" % (number, offset)
    size = max(size, max(objects) + 1)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        size, previous, trailer, xref)
    return bytes(out)


def segment(marker: int, payload: bytes) -> bytes:
    """A JPEG marker segment (its length counts the two length bytes)."""
    return b"\xff%c%s%s" % (marker, (len(payload) + 2).to_bytes(2, "big"), payload)


# JFIF APP0: version 1.1, no units, 1:1 density, no thumbnail.
JFIF = segment(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00")
# Adobe APP14: version 100, no flags, colour transform 1 (YCbCr).
ADOBE = segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01")
# Tables and headers of an 8x8 greyscale baseline JPEG: DQT, SOF0, DHT (one code).
JPEG_TABLES = (segment(0xDB, b"\x00" + b"\x01" * 64)
               + segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
               + segment(0xC4, b"\x00\x00\x01" + b"\x00" * 14 + b"\x00"))
# The scan: its header, then entropy-coded data with a stuffed FF 00 and a restart marker.
JPEG_SCAN = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x12\x34\xff\x00\x56\xff\xd0\x78"


def jpeg(*metadata: bytes, app0: bytes = JFIF, trailer: bytes = b"") -> bytes:
    """A JPEG (structure only: it is not meant to be decoded) with *metadata* segments after APP0."""
    return b"\xff\xd8" + app0 + b"".join(metadata) + ADOBE + JPEG_TABLES + JPEG_SCAN + b"\xff\xd9" + trailer


def jpeg_image(data: bytes, filters: bytes = b"/DCTDecode") -> bytes:
    """An 8x8 greyscale image XObject holding *data* under *filters*."""
    return stream(data, b"/Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray"
                        b" /BitsPerComponent 8 /Filter %s" % filters)


@dataclass(frozen=True)
class Field:
    """A form field merged with its one widget. *appearances*: ``None`` for no /AP, bytes for
    one /N appearance stream, or state name -> content for several (picked by *state*, /AS)."""

    name: str
    value: bytes  # a PDF object: (text) or /On
    appearances: bytes | dict[bytes, bytes] | None
    rect: tuple[float, float, float, float] = (72, 560, 372, 580)
    bbox: tuple[float, float, float, float] = (0, 0, 300, 20)
    matrix: bytes = b""
    kind: bytes = b"/Tx"
    state: bytes | None = None
    flags: int = 4  # Print

    def objects(self, first: int) -> list[bytes]:
        """The widget (numbered *first*), then its appearance streams."""
        states = {b"": self.appearances} if isinstance(self.appearances, bytes) else self.appearances or {}
        streams = [stream(content, b"/Type /XObject /Subtype /Form /BBox [%s] %s"
                                   b" /Resources << /Font << /Helv 3 0 R >> >>"
                          % (b" ".join(b"%g" % v for v in self.bbox), self.matrix))
                   for content in states.values()]
        if self.appearances is None:
            ap = b""
        elif isinstance(self.appearances, bytes):
            ap = b"/AP << /N %d 0 R >>" % (first + 1)
        else:
            ap = b"/AP << /N << %s >> >>" % b" ".join(
                b"%s %d 0 R" % (state, first + 1 + i) for i, state in enumerate(states))
        widget = (b"<< /Type /Annot /Subtype /Widget /FT %s /T (%s) /V %s /F %d /P 4 0 R /Rect [%s] %s %s >>"
                  % (self.kind, escape(self.name), self.value, self.flags,
                     b" ".join(b"%g" % v for v in self.rect), ap,
                     b"/AS %s" % self.state if self.state else b""))
        return [widget, *streams]


def shown(text: str, x: float = 2, y: float = 6) -> bytes:
    """An appearance's content showing *text* in 11 pt Helvetica at (x, y) of its box."""
    return b"/Tx BMC BT /Helv 11 Tf %g %g Td (%s) Tj ET EMC" % (x, y, escape(text))


def form_summary(lines: Sequence[str], fields: Sequence[Field]) -> bytes:
    """A one-page summary showing *lines*, with *fields* in its /AcroForm and /Annots."""
    number = first_free_object(1)
    objects: list[bytes] = []
    widgets = []
    for field in fields:
        widgets.append(b"%d 0 R" % number)
        made = field.objects(number)
        objects += made
        number += len(made)
    refs = b" ".join(widgets)
    return document([text_ops(lines)], page_extra=b"/Annots [%s]" % refs,
                    catalog_extra=b"/AcroForm << /Fields [%s] /DA (/Helv 0 Tf 0 g) >>" % refs,
                    extra_objects=objects)
