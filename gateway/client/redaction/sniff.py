"""What a document is, from its first bytes (never from its file name)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PDF = "application/pdf"
TEXT = "text/plain"
# A PDF starts with its header; tolerating leading junk (as some readers do) would let a
# polyglot pass as a PDF.
PDF_MAGIC = b"%PDF-"
# Images carry no text the gate can read (no OCR), so they are refused, by name.
_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
)
_OTHERS = (
    (b"PK\x03\x04", "ZIP archive or Office document"),
    (b"\xd0\xcf\x11\xe0", "legacy Office document"),
    (b"{\\rtf", "RTF document"),
)
# Controls that do not occur in plain text (tab, newlines and form feed do).
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f]")


@dataclass(frozen=True)
class Sniffed:
    """The detected kind, and a description for messages."""

    kind: Literal["pdf", "text", "image", "other"]
    description: str


def sniff(data: bytes) -> Sniffed:
    """Classify *data* as PDF, UTF-8 plain text, an image, or something else."""
    return by_magic(data) or (Sniffed("text", "UTF-8 plain text") if _is_text(data)
                              else Sniffed("other", "binary data of an unknown type"))


def by_magic(data: bytes) -> Sniffed | None:
    """The kind *data*'s first bytes announce (PDF, image, archive), or ``None``: cheap, reads no more."""
    if data.startswith(PDF_MAGIC):
        return Sniffed("pdf", "PDF document")
    for magic, name in _IMAGES:
        if data.startswith(magic):
            return Sniffed("image", name)
    if data[:2] == b"BM" and data[6:10] == bytes(4):  # "BM", size, zero reserved fields
        return Sniffed("image", "BMP image")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniffed("image", "WebP image")
    if data[4:8] == b"ftyp":
        return Sniffed("image", "HEIC/AVIF image")
    for magic, name in _OTHERS:
        if data.startswith(magic):
            return Sniffed("other", name)
    return None


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _TEXT_CONTROLS.search(text) is None
