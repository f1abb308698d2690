"""lib/manifest-make.js (run by node) builds the bytes `carebridge send` builds: canonical JSON,
the meta object, the policy and the manifest, compared with the Python that the gateway and
the recipients' CLI check them with."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carebridge.crypto import age
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.manifest import (ID_PATTERN, CiphertextDigest, Manifest, ManifestRecipient, Override, ProfileRef,
                                       Sender)
from carebridge.crypto.signing import SigningKey
from carebridge.gateway.client.transfer import SendOptions, _meta, policy_json

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 6, 20, 15, 42, 789000, tzinfo=UTC)
TRICKY = {"b": "é—\u2028\n\t\"\\\u0001\u007f😀 x", "a": [1, -2, True, None, 2**53 - 1], "A": {}, "é": "", "Z": "z"}
IDS = ["usr_b", "usr_a", "usr_C"]
SCRIPT = """
import * as m from './gateway/web/src/lib/manifest-make.js';
const [tricky, ids, now, manifest] = JSON.parse(process.argv[1]);
const when = new Date(now);
console.log(JSON.stringify({
  tricky: m.canonicalJson(tricky),
  v1: m.canonicalJson(m.policyJson(ids, { expiresInSeconds: 3600, maxDownloads: 2 }, when)),
  v2: m.canonicalJson(m.policyJson(ids, { maxTotalDownloads: 7, spa: "org_spa",
    purposes: ["treatment", "patient_request", "treatment"], links: "sign_in", retentionSeconds: 30 * 86400 }, when)),
  bare: m.canonicalJson(m.policyJson(ids, {}, when)),
  every: m.canonicalJson(m.policyJson(ids, { expiresInSeconds: 3 * 86400, maxDownloads: 4, notBeforeSeconds: 7200,
    maxTotalDownloads: 9, networks: ["10.1.0.0/16", "2001:db8::/32"], purposes: ["care_coordination"],
    links: "bearer", linkLifetimeSeconds: 6 * 3600, linkUses: 3, retentionSeconds: 0, legalHold: true }, when)),
  hold: m.canonicalJson(m.policyJson(ids, { legalHold: true }, when)),
  linkUsesOnly: m.canonicalJson(m.policyJson(ids, { links: "sign_in", linkUses: 5 }, when)),
  orphanUses: (() => { try { m.policyJson(ids, { linkUses: 2 }, when); return "accepted"; }
    catch (e) { return e.constructor.name; } })(),
  meta: new TextDecoder().decode(m.metaJson({ name: "summary-été.pdf", sha256: "ab".repeat(32), size: 728,
    note: "Line one\\nline \\"two\\" — é" })),
  manifest: m.canonicalJson(m.manifestObject({ ...manifest, createdAt: when })),
  ids: [m.newDocumentId(), m.newDocumentId()],
  float: (() => { try { m.canonicalJson({ x: 1.5 }); return "accepted"; } catch (e) { return e.constructor.name; } })(),
}));
"""


def test_the_pages_canonical_json_meta_policy_and_manifest_are_the_clis() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.fail("node is needed (Debian package nodejs)")
    key = SigningKey.generate()
    recipient = str(age.X25519Identity.generate().recipient)
    mine = str(age.X25519Identity.generate().recipient)
    manifest_in = {"documentId": "doc_Ab-9_xYz", "sender": {"userId": "usr_me", "signingKey": key.public.encode()},
                   "recipients": [["usr_b", recipient], ["usr_me", mine]],
                   "content": {"sha256": "cd" * 32, "size": 12345}, "meta": {"sha256": "ef" * 32, "size": 321},
                   "policyDigest": "01" * 32,
                   "overrides": [{"rule_id": "phone", "reason": "phone: front desk — é"}],
                   "webRelease": "5f" * 32, "redactionProfile": {"id": "quill.default", "version": 3}}
    now_ms = int(NOW.timestamp() * 1000)
    out = subprocess.run([node, "--input-type=module", "-e", SCRIPT, json.dumps([TRICKY, IDS, now_ms, manifest_in])],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(out.stdout)
    assert got["tricky"].encode() == canonical_json(TRICKY)
    v1 = SendOptions(expires_in=timedelta(hours=1), max_downloads=2)
    assert got["v1"].encode() == canonical_json(policy_json(IDS, v1, spa=None, now=NOW))
    v2 = SendOptions(max_total_downloads=7, purposes=("treatment", "patient_request", "treatment"), links="sign_in",
                     retention=timedelta(days=30))
    assert got["v2"].encode() == canonical_json(policy_json(IDS, v2, spa="org_spa", now=NOW))
    assert got["bare"].encode() == canonical_json(policy_json(IDS, SendOptions(), spa=None, now=NOW))
    # Every field the CLI's send has: not before, networks, link lifetime and uses, legal hold, zero retention.
    every = SendOptions(expires_in=timedelta(days=3), max_downloads=4, not_before_in=timedelta(hours=2),
                        max_total_downloads=9, networks=("10.1.0.0/16", "2001:db8::/32"),
                        purposes=("care_coordination",), links="bearer", link_lifetime=timedelta(hours=6),
                        link_uses=3, retention=timedelta(0), legal_hold=True)
    assert got["every"].encode() == canonical_json(policy_json(IDS, every, spa=None, now=NOW))
    assert got["hold"].encode() == canonical_json(policy_json(IDS, SendOptions(legal_hold=True), spa=None, now=NOW))
    uses_only = SendOptions(links="sign_in", link_uses=5)
    assert got["linkUsesOnly"].encode() == canonical_json(policy_json(IDS, uses_only, spa=None, now=NOW))
    assert got["orphanUses"] == "SendError"  # the CLI refuses --link-uses without --links too
    assert got["meta"].encode() == _meta(Path("summary-été.pdf"), "ab" * 32, 728, 'Line one\nline "two" — é')
    expected = Manifest(document_id="doc_Ab-9_xYz", sender=Sender("usr_me", key.public),
                        recipients=(ManifestRecipient("usr_b", recipient), ManifestRecipient("usr_me", mine)),
                        content=CiphertextDigest("cd" * 32, 12345), meta=CiphertextDigest("ef" * 32, 321),
                        created_at=NOW.replace(microsecond=0), policy_digest="01" * 32,
                        overrides=(Override("phone", "phone: front desk — é"),), web_release="5f" * 32,
                        redaction_profile=ProfileRef("quill.default", 3))
    assert got["manifest"].encode() == expected.to_json()
    first, second = got["ids"]
    assert first != second and all(ID_PATTERN.fullmatch(i) and len(i) == 26 for i in (first, second))
    assert got["float"] == "SendError"  # no floats in canonical JSON
