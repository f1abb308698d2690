"""The fast content-stream parser builds exactly the operations pypdf's own parser builds.

On every page and form XObject of the public corpus and on hand-made streams
full of the tokens it leaves to pypdf (strings, arrays, dictionaries, inline
images, comments, escaped names, odd numbers), the operations must be equal
and of the same types, and a stream over pypdf's parsing budget must fail
the same way.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader, get_configuration, overwrite_configuration
from pypdf.errors import LimitReachedError
from pypdf.generic import ContentStream, DecodedStreamObject, DictionaryObject, StreamObject

from carebridge.gateway.client.redaction._content import parse

PUBLIC = Path(__file__).parent / "public_pdfs"
# Tokens the regular expression reads and tokens it must leave to pypdf, side by side.
HAND_MADE = [
    b"BT /F1 12 Tf 72 712 Td (Patient: Zorbly) Tj ET",
    b"q 1 0 0 1 -3.5 +.25 cm /Im0 Do Q 0.5 g 10 10 100 20 re f",
    b"BT [(A) -120 (B) 33.5 (C)] TJ <48656c6c6f> Tj T* (x) ' 1 2 (y) \" ET",
    b"/Span <</MCID 3 /ActualText (Zorbly)>> BDC EMC /P <</MCID 4>> BDC EMC",
    b"% a comment\n1 0 0 RG % another\n/Name#20With#23Escapes 1 Tf /\xc3\xa9t\xc3\xa9 gs",
    b"1,5 - . 1.2.3 +-4 12345678901234567890123 7 cm 4 d0 /",
    b"1 2 cm 3 0 R Do",  # an indirect reference: pypdf refuses it in a content stream
    b"BI /W 2 /H 1 /BPC 8 /CS /G ID \x00\xff EI Q",
    b"\x001 2 m\x003 4 l S\x00n true false null endobj",
    b"1 2 m\x0b3 4 l S",  # a vertical tab: a delimiter after an operator, not whitespace before a token
    b"BT [(a\\(b) 1 (c(d)e)] TJ (x\\101) Tj [(two\nlines) -5.5] TJ [] TJ [ ( a ) \x0b7 ] TJ ET",
    b"[1 0 R] TJ",
    b"1 2 3",
    b"/A",
    b"12",
    b"BT /" + b"N" * 300 + b" 1 Tf " + b"X" * 80 + b" ET",
]


def _pypdf(stream: StreamObject) -> list:
    return ContentStream(stream, None, "bytes").operations


def _ours(stream: StreamObject) -> list:
    content = ContentStream(stream, None, "bytes")
    parse(content)
    return content.operations


def _typed(value: object) -> object:
    """*value* with the type of every object beside it, for a comparison that sees types."""
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, *(_typed(v) for v in value)]
    if isinstance(value, dict):
        return [type(value).__name__, *sorted((k, _typed(v)) for k, v in value.items())]
    return type(value).__name__, value


def _stream(data: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    return stream


def _streams(path: Path) -> list[StreamObject]:
    """Every page's content stream and every form XObject its resources reach."""
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    found, seen = [], set()

    def forms(resources: object) -> None:
        resources = resources.get_object() if resources is not None else None
        xobjects = resources.get("/XObject") if isinstance(resources, DictionaryObject) else None
        for ref in (xobjects.get_object() if xobjects is not None else {}).values():
            form = ref.get_object()
            if isinstance(form, StreamObject) and form.get("/Subtype") == "/Form" and id(form) not in seen:
                seen.add(id(form))
                found.append(form)
                forms(form.get("/Resources"))

    for page in reader.pages:
        contents = page.get("/Contents")
        if contents is not None:
            found.append(ContentStream(contents.get_object(), reader, "bytes"))
        forms(page.get("/Resources"))
    return found


@pytest.mark.parametrize("data", HAND_MADE, ids=range(len(HAND_MADE)))
def test_hand_made_streams_parse_as_pypdf_parses_them(data: bytes) -> None:
    try:
        expected = _typed(_pypdf(_stream(data)))
    except Exception as exc:  # noqa: BLE001 - then ours must fail the same way
        with pytest.raises(type(exc)):
            _ours(_stream(data))
        return
    assert _typed(_ours(_stream(data))) == expected


@pytest.mark.parametrize("path", sorted(PUBLIC.glob("*.pdf")), ids=lambda p: p.name)
def test_every_public_content_stream_parses_as_pypdf_parses_it(path: Path) -> None:
    streams = _streams(path)
    assert streams
    for stream in streams:
        assert _typed(_ours(stream)) == _typed(_pypdf(stream))


def test_the_parsing_budget_holds_as_in_pypdf() -> None:
    before = get_configuration().stream_parsing_work_maximum_count
    overwrite_configuration(stream_parsing_work_maximum_count=50)
    try:
        with pytest.raises(LimitReachedError):
            _pypdf(_stream(b"1 2 m " * 20))
        with pytest.raises(LimitReachedError):
            _ours(_stream(b"1 2 m " * 20))
        assert len(_ours(_stream(b"1 2 m " * 10))) == 10
    finally:
        overwrite_configuration(stream_parsing_work_maximum_count=before)
