"""Fuzz targets: one module per parser of untrusted bytes, each a ``TestOneInput(data: bytes)``.

The contract of every target: feed the bytes to the parser the way carebridge
does, let only the parser's documented error types pass, and check what a
success promises (a round trip, a bound). Any other exception is a crash.
``scripts/fuzz.py`` runs a target under atheris (libFuzzer, coverage-guided);
``tests/fuzz/test_fuzz.py`` replays the corpus and regressions and runs each
target for a few seconds. Keys are fixed and synthetic (:mod:`._keys`), so a
seed file means the same thing in every process.
"""

NAMES = (
    "age_header", "age_armor", "age_stream", "keyfile", "canonical_json", "manifest", "policy",
    "link_token", "signed_note", "audit_bundle", "upload_multipart", "pdf_gate",
)
