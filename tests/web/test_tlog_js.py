"""The page's key-transparency checks (gateway/web/src/lib/tlog.js) agree with the CLI's crypto.

Python's own code (crypto/merkle.py, note.py, tlog_proof.py, registration.py)
makes trees, signed checkpoints, tlog proofs and key registrations; node runs
the page's module on them (WebCrypto SHA-256 and Ed25519, as in a browser), and
every verdict must be Python's: each index of trees of many sizes, and proofs,
checkpoints and registrations altered one way at a time. The log keys are
chosen so that their base64 holds a "+" (a key string's separator too).
"""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import datetime, timezone

from carebridge.crypto import merkle, note, tlog_proof
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.errors import CryptoError
from carebridge.crypto.registration import log_object, sign_registration
from carebridge.crypto.signing import SigningKey
from tests.conftest import REPO_ROOT, _which

ORIGIN = "carebridge.test/log"
SIZES = (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31)
RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"

RUN_JS = """
import * as tlog from "./gateway/web/src/lib/tlog.js";
const b = (s) => Uint8Array.from(Buffer.from(s, "base64"));
const cases = JSON.parse(await new Promise((ok) => { let t = ""; process.stdin.on("data", (d) => t += d).on("end", () => ok(t)); }));
const out = [];
for (const c of cases) {
  try {
    if (c.kind === "consistency") {
      out.push(await tlog.verifyConsistency(BigInt(c.old), BigInt(c.size), c.proof.map(b), b(c.oldRoot), b(c.root)));
      continue;
    }
    const verifier = await tlog.parseVerifierKey(c.vkey);
    if (c.kind === "proof") {
      const proof = tlog.parseProof(b(c.proof));
      const checkpoint = await tlog.openCheckpoint(proof.note, verifier, c.origin);
      const leaf = new Uint8Array(await crypto.subtle.digest("SHA-256", Buffer.concat([Buffer.from([0]), b(c.entry)])));
      out.push(await tlog.verifyInclusion(leaf, proof.index, checkpoint.size, proof.hashes, checkpoint.root));
    } else {
      out.push(Boolean(await tlog.checkPublished(c.key, c.user, b(c.proof), verifier, c.origin)));
    }
  } catch (error) {
    if (!(error instanceof tlog.LogError)) throw error;
    out.push(false);
  }
}
console.log(JSON.stringify(out));
"""


def run_js(cases: list[dict]) -> list[bool]:
    proc = subprocess.run([str(_which("node", "nodejs")), "--input-type=module", "-e", RUN_JS], cwd=REPO_ROOT,
                          input=json.dumps(cases), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def signer_with_plus(name: str) -> note.Signer:
    while True:
        signer = note.Signer.generate(name)
        if "+" in signer.verifier.encode().split("+", 2)[2]:
            return signer


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def python_verdict(proof: bytes, entry: bytes, verifier: note.Verifier, origin: str) -> bool:
    try:
        tlog_proof.verify_tlog_proof(tlog_proof.parse_tlog_proof(proof), leaf_hash=merkle.leaf_hash(entry),
                                     verifier=verifier, origin=origin)
    except CryptoError:
        return False
    return True


def flip(raw: bytes, at: int) -> bytes:
    changed = bytearray(raw)
    changed[at] ^= 0x01
    return bytes(changed)


def test_inclusion_proofs_and_checkpoints_agree_with_python() -> None:
    log, other, cosigner = signer_with_plus("carebridge.test"), signer_with_plus("carebridge.test"), \
        note.Signer.generate("witness.test")
    entries = [canonical_json({"seq": i, "action": "test.entry", "object": f"obj_{i}"}) for i in range(max(SIZES))]
    tree = merkle.MemoryTree()
    cases, expected = [], []

    def add(proof: tlog_proof.TlogProof, entry: bytes, *, vkey: str = log.verifier.encode(), origin: str = ORIGIN):
        text = proof.format()
        cases.append({"kind": "proof", "vkey": vkey, "origin": origin, "proof": b64(text), "entry": b64(entry)})
        expected.append(python_verdict(text, entry, note.Verifier.parse(vkey), origin))

    for size in SIZES:
        while tree.size < size:
            tree.append_leaf_hash(merkle.leaf_hash(entries[tree.size]))
        checkpoint = note.Checkpoint(ORIGIN, size, tree.root_hash())
        signed = note.sign_checkpoint(checkpoint, cosigner, log)  # an unknown cosigner first: ignored
        for index in range(size):
            hashes = tuple(merkle.prove_inclusion(index, size, tree))
            add(tlog_proof.TlogProof(index=index, hashes=hashes, signed_checkpoint=signed), entries[index])
        index = size // 2
        hashes = tuple(merkle.prove_inclusion(index, size, tree))
        proof = tlog_proof.TlogProof(index=index, hashes=hashes, signed_checkpoint=signed)
        add(proof, entries[(index + 1) % len(entries)])  # another entry
        add(proof, entries[index], origin="elsewhere.test/log")  # another log's origin
        add(proof, entries[index], vkey=other.verifier.encode())  # not signed by the pinned key
        if hashes:
            add(tlog_proof.TlogProof(index=index, hashes=(flip(hashes[0], 3), *hashes[1:]), signed_checkpoint=signed),
                entries[index])
            add(tlog_proof.TlogProof(index=index, hashes=hashes[:-1], signed_checkpoint=signed), entries[index])
        if size > 1:
            add(tlog_proof.TlogProof(index=(index + 1) % size, hashes=hashes, signed_checkpoint=signed), entries[index])
        forged = note.sign_checkpoint(note.Checkpoint(ORIGIN, size, flip(tree.root_hash(), 0)), other)
        swapped = signed.replace(signed.split(b"\n")[2], forged.split(b"\n")[2])  # root changed, signature kept
        add(tlog_proof.TlogProof(index=index, hashes=hashes, signed_checkpoint=swapped), entries[index])

    verdicts = run_js(cases)
    assert verdicts == expected
    assert sum(expected) == sum(SIZES) and len(expected) - sum(expected) > 5 * len(SIZES)


def test_a_key_registration_is_checked_as_the_cli_checks_it() -> None:
    log = signer_with_plus("carebridge.test")
    key = SigningKey.generate()
    user = "usr_sender0000000000000001"
    registration = sign_registration(user_id=user, age_recipient=RECIPIENT, key=key,
                                     now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    tree = merkle.MemoryTree()
    filler = [canonical_json({"seq": i, "action": "test.entry"}) for i in range(6)]
    for entry in filler:
        tree.append_leaf_hash(merkle.leaf_hash(entry))
    entry = canonical_json({"action": "keys.register", "actor": user, "object": log_object(registration),
                            "outcome": "allow", "seq": 6})
    tree.append_leaf_hash(merkle.leaf_hash(entry))
    tree.append_leaf_hash(merkle.leaf_hash(filler[0]))
    signed = note.sign_checkpoint(note.Checkpoint(ORIGIN, tree.size, tree.root_hash()), log)
    proof = tlog_proof.TlogProof(index=6, hashes=tuple(merkle.prove_inclusion(6, tree.size, tree)),
                                 signed_checkpoint=signed).format()
    good = {"age_recipient": RECIPIENT, "verify_key": key.public.encode(), "log_seq": 6,
            "registration": b64(registration), "log_entry": b64(entry)}
    other_entry = canonical_json({**json.loads(entry), "object": "reg_someone_else"})
    variants = [
        (good, user, True),
        (good, "usr_someone0000000000000002", False),  # registered by another user
        ({**good, "verify_key": SigningKey.generate().public.encode()}, user, False),  # another signing key
        ({**good, "log_entry": b64(other_entry)}, user, False),  # the entry names another statement
        ({**good, "log_seq": 5}, user, False),  # the proof is for another entry
        ({**good, "registration": b64(registration.replace(b'"time":"2026-12-01', b'"time":"2026-12-02'))},
         user, False),  # the statement altered after signing
    ]
    cases = [{"kind": "key", "vkey": log.verifier.encode(), "origin": ORIGIN, "key": k, "user": u,
              "proof": b64(proof)} for k, u, _ in variants]
    assert run_js(cases) == [ok for _, _, ok in variants]


def test_consistency_proofs_agree_with_python() -> None:
    """verifyConsistency (the browser's keys audit) accepts Python's proofs and refuses each alteration."""
    trees, roots = merkle.MemoryTree(), {}
    for i in range(max(SIZES)):
        trees.append_leaf_hash(merkle.leaf_hash(canonical_json({"seq": i})))
        roots[trees.size] = trees.root_hash()
    cases, expected = [], []

    def add(old: int, size: int, proof: list[bytes], old_root: bytes, root: bytes) -> None:
        cases.append({"kind": "consistency", "old": old, "size": size, "proof": [b64(h) for h in proof],
                      "oldRoot": b64(old_root), "root": b64(root)})
        try:
            merkle.verify_consistency(old, size, proof, old_root, root)
            expected.append(True)
        except CryptoError:
            expected.append(False)

    for size in SIZES:
        for old in range(1, size + 1):
            proof = merkle.prove_consistency(old, size, trees)
            add(old, size, proof, roots[old], roots[size])
            add(old, size, proof, flip(roots[old], 5), roots[size])  # the old root rewritten
            add(old, size, proof, roots[old], flip(roots[size], 7))  # another new root
            if proof:
                add(old, size, [*proof[:-1], flip(proof[-1], 1)], roots[old], roots[size])  # a hash altered
                add(old, size, proof[:-1], roots[old], roots[size])  # a hash left out
    verdicts = run_js(cases)
    assert verdicts == expected
    assert sum(expected) == sum(SIZES) and len(expected) - sum(expected) > 2 * sum(SIZES)
