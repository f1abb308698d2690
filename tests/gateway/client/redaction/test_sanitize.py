"""Sanitizing: nothing but the visible pages survives, and the visible text is unchanged."""

from __future__ import annotations

import io

from pypdf import PdfReader

from carebridge.gateway.client.redaction import inspect_document

from . import pdfgen

OLD_TEXT = "Old revision: Test Patient, SSN 123-45-6789"
VISIBLE = ["Treatment summary (synthetic)", "Chemical peel, 20% glycolic acid", "Follow-up in 4 weeks"]
XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description'
       b' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Test Patient XMP</dc:creator>'
       b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
# Words of the planted extras: none may remain in the output bytes.
LEAKS = (b"JavaScript", b"app.alert", b"EmbeddedFile", b"attachment secret", b"Test Patient XMP",
         b"Info Author", b"AcroForm", b"field secret", b"annotation secret", b"Old revision",
         b"OpenAction", b"Thumb", b"PieceInfo")


def _loaded_pdf() -> bytes:
    """A summary carrying JavaScript, an attachment, info + XMP metadata, annotations, a form,
    a thumbnail, page-piece data, and an incremental update that replaced the page's text."""
    x = pdfgen.first_free_object(1)  # 6: the first extra object
    extras = [
        b"<< /S /JavaScript /JS (app.alert\\('hi'\\)) >>",                      # x: JS action
        pdfgen.stream(b"attachment secret", b"/Type /EmbeddedFile"),            # x+1
        b"<< /Type /Filespec /F (a.txt) /EF << /F %d 0 R >> >>" % (x + 1),     # x+2
        pdfgen.stream(XMP, b"/Type /Metadata /Subtype /XML"),                   # x+3
        b"<< /Author (Info Author) /Title (Test Patient) >>",                   # x+4: info
        b"<< /FT /Tx /T (name) /V (field secret) /Subtype /Widget /Rect [72 600 300 620] /P 4 0 R >>",
        b"<< /Type /Annot /Subtype /Text /Rect [0 0 10 10] /Contents (annotation secret) >>",
        pdfgen.stream(b"thumbnail"),                                            # x+7
    ]
    catalog = (b"/Names << /JavaScript << /Names [(js) %d 0 R] >> /EmbeddedFiles << /Names [(a.txt) %d 0 R] >> >>"
               b" /OpenAction %d 0 R /Metadata %d 0 R /AcroForm << /Fields [%d 0 R] >>"
               % (x, x + 2, x, x + 3, x + 5))
    page = (b"/Annots [%d 0 R %d 0 R] /AA << /O %d 0 R >> /Thumb %d 0 R /PieceInfo << /App << /Private (x) >> >>"
            % (x + 5, x + 6, x, x + 7))
    first = pdfgen.document([pdfgen.text_ops([OLD_TEXT])], catalog_extra=catalog, page_extra=page,
                            extra_objects=extras, trailer=b"/Info %d 0 R" % (x + 4))
    return pdfgen.append_revision(first, {5: pdfgen.stream(pdfgen.text_ops(VISIBLE))},
                                  trailer=b"/Info %d 0 R" % (x + 4))


def test_nothing_but_the_pages_survives() -> None:
    original = _loaded_pdf()
    inspection = inspect_document(original)
    out = inspection.sanitized
    for leak in LEAKS:
        assert leak in original, leak  # planted, so its absence below means something
        assert leak not in out, leak
    reader = PdfReader(io.BytesIO(out), strict=True)
    root = reader.trailer["/Root"].get_object()
    assert set(root) == {"/Type", "/Pages"}
    assert "/Info" not in reader.trailer and reader.metadata is None
    page = reader.pages[0]
    assert set(page) <= {"/Type", "/Parent", "/MediaBox", "/Contents", "/Resources"}
    assert reader.xmp_metadata is None and reader.get_fields() is None and not reader.attachments


def test_visible_text_is_unchanged() -> None:
    original = _loaded_pdf()
    before = [p.extract_text() for p in PdfReader(io.BytesIO(original)).pages]
    after = [p.extract_text() for p in PdfReader(io.BytesIO(inspect_document(original).sanitized)).pages]
    assert after == before and all(line in after[0] for line in VISIBLE)


def test_actions_are_reported() -> None:
    actions = {a.name: a.count for a in inspect_document(_loaded_pdf()).actions}
    assert actions == actions | {
        "removed-javascript": 1, "removed-embedded-files": 1, "removed-document-info": 1,
        "removed-xmp-metadata": 1, "removed-annotations": 2, "removed-form-fields": 1,
        "removed-open-action": 1, "removed-additional-actions": 1, "removed-thumbnails": 1,
        "removed-page-piece-data": 1, "removed-previous-revisions": 1,
    }
    assert actions["dropped-objects"] > 0


def test_the_old_revision_is_not_scanned_nor_kept() -> None:
    inspection = inspect_document(_loaded_pdf())
    assert inspection.findings == ()  # the SSN lived only in the replaced revision


def test_sanitized_output_reopens_and_is_stable() -> None:
    once = inspect_document(pdfgen.summary(VISIBLE))
    twice = inspect_document(once.sanitized)
    assert len(PdfReader(io.BytesIO(twice.sanitized), strict=True).pages) == 1
    assert [a.name for a in twice.actions] in ([], ["dropped-objects"])
