"""Write the seed corpora of tests/fuzz/corpus/ from the repo's vectors: ``python -m tests.fuzz.make_corpus``.

Run it again when a format changes; it rewrites every seed (they are
deterministic except for random nonces, ECDSA signatures and the
post-quantum key). Sources: the C2SP CCTV age vectors (npm ``cctv-age``),
the signed-note vectors (tests/vectors/signed-note), the manifest and audit
factories of tests/crypto, and the smallest public PDFs of the redaction
tests (CC-BY-SA-4.0, see their README).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

from carebridge.crypto import age, keyfile
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.linktoken import sign_token
from carebridge.crypto.manifest import Sender, sign_manifest
from carebridge.crypto.note import Checkpoint, sign_checkpoint

from ..conftest import _CCTV_EXPORT_JS, REPO_ROOT
from ..crypto.audit_factories import Log
from ..crypto.test_manifest import build_manifest
from .targets._keys import IDENTITY, LINK_AUDIENCE, LINK_ISSUER, LINK_KEY, LOG_SIGNER, SENDER

CORPUS = Path(__file__).parent / "corpus"
PDFS = REPO_ROOT / "tests/gateway/client/redaction/public_pdfs"
SMALL_PDFS = ("inline-image.pdf", "annotated_pdf.pdf", "libre-office-link.pdf", "habibi.pdf")
MAX_CCTV_SEEDS = 40  # of 143: the smallest, enough to show every failure class
POLICIES = (
    {"version": 2, "recipients": ["usr_spa1"]},
    {"version": 2, "recipients": ["usr_spa1", "usr_spa2"], "expires_at": "2026-03-05T00:00:00Z",
     "max_downloads": 3, "networks": ["192.0.2.0/24", "2001:db8::/32"], "purposes": ["treatment"],
     "links": {"mode": "sign_in", "lifetime": 3600, "uses": 2}, "retention": 86400},
    {"revoke": True}, {"revoke_recipient": "usr_spa1"}, {"legal_hold": True},
    {"expires_at": "2026-03-02T00:00:00Z"},
)


def _cctv() -> dict[str, bytes]:
    """The CCTV vectors' age files (their text header stripped), smallest first."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["node", "--input-type=module", "-e", _CCTV_EXPORT_JS], cwd=REPO_ROOT, check=True,
                       env={**os.environ, "CCTV_OUT": out}, capture_output=True)
        files = {p.name: _cctv_body(p.read_bytes()) for p in Path(out).iterdir()}
    return dict(sorted(files.items(), key=lambda item: len(item[1]))[:MAX_CCTV_SEEDS])


def _cctv_body(vector: bytes) -> bytes:
    head, _, body = vector.partition(b"\n\n")
    return zlib.decompress(body) if b"compressed: zlib" in head else body


def _encrypted(plain: bytes, *, armor: bool = False) -> bytes:
    out = io.BytesIO()
    age.encrypt(io.BytesIO(plain), out, [IDENTITY.recipient], armor=armor)
    return out.getvalue()


def _multipart(parts: list[tuple[str, bytes]]) -> bytes:
    boundary = "fuzzboundary42"
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
                    for name, data in parts)
    return f"multipart/form-data; boundary={boundary}\n".encode() + body + f"--{boundary}--\r\n".encode()


def seeds() -> dict[str, dict[str, bytes]]:
    cctv = _cctv()
    plain = [b"", b"treatment summary of a made-up patient\n", bytes(range(256)) * 4]
    ours = {f"x25519-{len(p)}": _encrypted(p) for p in plain}
    armored = {f"armored-{len(p)}": _encrypted(p, armor=True) for p in plain}
    manifest = build_manifest(sender=Sender(user_id="usr_clinic", signing_key=SENDER.public))
    signed = sign_manifest(manifest, SENDER)
    user_keys = keyfile.UserKeys(IDENTITY, SENDER)
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    log = Log(6, origin=LOG_SIGNER.name, signer=LOG_SIGNER)
    checkpoint = sign_checkpoint(Checkpoint(origin=LOG_SIGNER.name, size=6, root_hash=log.root(6)), LOG_SIGNER)
    vectors = json.loads((REPO_ROOT / "tests/vectors/signed-note/signed-note.json").read_text())["vectors"]
    claims = {"aud": LINK_AUDIENCE, "iss": LINK_ISSUER, "jti": "lnk_fuzz", "doc": "doc_01HZX", "sub": "usr_spa1",
              "mode": "sign_in", "iat": 1767225600, "nbf": 1767225600, "exp": 1767229200}
    return {
        "age_header": {**{k: v for k, v in cctv.items() if v.startswith(b"age-")}, **ours},
        "age_armor": {**{k: v for k, v in cctv.items() if b"BEGIN AGE" in v[:100]}, **armored},
        "age_stream": ours,
        "keyfile": {"x25519": user_keys.identity_file(created=created),
                    "post-quantum": keyfile.UserKeys.generate(post_quantum=True).identity_file(created=created)},
        "canonical_json": {"manifest-body": manifest.to_json(), "signed-manifest": signed,
                           "log-entry": log.entries[0], "nested": canonical_json({"a": [1, -2, None, True, "é\u2028"]})},
        "manifest": {"signed": signed, "body": manifest.to_json()},
        "policy": {f"policy-{i}": json.dumps(p).encode() for i, p in enumerate(POLICIES)},
        "link_token": {"sign-in": sign_token(claims, LINK_KEY).encode()},
        "signed_note": {"checkpoint": checkpoint, **{v["name"]: v["note"].encode() for v in vectors}},
        "audit_bundle": {"full": log.full_bundle(), "partial": log.partial_bundle([1, 2, 3], filters={"start": 1, "end": 4}),
                         "consistency": log.partial_bundle([2, 3, 4, 5], filters={"start": 2}, previous_size=2)},
        "upload_multipart": {"four-parts": _multipart([
            ("manifest", signed), ("policy", json.dumps(POLICIES[0]).encode()),
            ("meta", ours["x25519-0"]), ("content", ours["x25519-39"])])},
        "pdf_gate": {name: (PDFS / name).read_bytes() for name in SMALL_PDFS},
    }


def main() -> None:
    for target, files in seeds().items():
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / f"{name}-{hashlib.sha256(data).hexdigest()[:8]}").write_bytes(data)
        print(f"{target}: {len(files)} seeds")


if __name__ == "__main__":
    main()
