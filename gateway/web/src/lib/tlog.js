// Key transparency in the page, as the CLI checks it (gateway/client/transparency.py):
// a key set's signed registration, the keys.register log entry that names it,
// and that entry's inclusion (RFC 6962 hashing, WebCrypto SHA-256) in a C2SP
// checkpoint signed by the pinned log key (a C2SP signed note, Ed25519).
// Formats: crypto/registration.py, crypto/tlog_proof.py, crypto/note.py, crypto/merkle.py.
import { concat, fromBase64, fromUtf8, utf8 } from "./bytes.js";
import { verifyEd25519 } from "./manifest.js";

const PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const MAX_PROOF_BYTES = 256 * 1024 + Math.floor((4096 * 4) / 3) + 4096; // crypto/tlog_proof.py MAX_TLOG_PROOF_SIZE
const MAX_PROOF_HASHES = 63; // crypto/merkle.py MAX_INCLUSION_PROOF_HASHES
const MAX_CONSISTENCY_HASHES = 64; // crypto/merkle.py MAX_CONSISTENCY_PROOF_HASHES
const MAX_REGISTRATION_BYTES = 16 * 1024; // crypto/registration.py
const SIGNATURE_DOMAIN = "carebridge/v1/"; // crypto/signing.py
const REGISTRATION_CONTEXT = "key-registration";
const KEY_PREFIX = "ed25519:";
const ED25519_TYPE = 0x01;

export class LogError extends Error {}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Canonical padded base64 only (one value, one spelling), as crypto/note.py reads it; else null. */
function canonicalBase64(text) {
  try {
    const raw = fromBase64(text);
    return btoa(String.fromCharCode(...raw)) === text ? raw : null;
  } catch {
    return null;
  }
}

async function keyId(name, publicKey) {
  return (await sha256(concat(utf8(name + "\n"), new Uint8Array([ED25519_TYPE]), publicKey))).subarray(0, 4);
}

/** The log's verifier key ``name+keyid+base64(0x01||key)``: {name, keyId, publicKey}; throws LogError. */
export async function parseVerifierKey(text) {
  const [name, hexId, ...rest] = String(text).split("+"); // the base64 key may hold "+" too
  const raw = rest.length && /^[0-9a-f]{8}$/.test(hexId) ? canonicalBase64(rest.join("+")) : null;
  if (!name || !raw || raw.length !== 33 || raw[0] !== ED25519_TYPE) {
    throw new LogError("the log's verifier key is malformed");
  }
  const publicKey = raw.subarray(1);
  const id = await keyId(name, publicKey);
  if (Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("") !== hexId) {
    throw new LogError("the log's verifier key ID does not match its name and key");
  }
  return { name, keyId: id, publicKey };
}

/** A C2SP tlog-proof's parts: {index (BigInt), hashes, note (bytes)}; throws LogError. */
export function parseProof(bytes) {
  if (bytes.length > MAX_PROOF_BYTES) throw new LogError("the inclusion proof is too large");
  let split = -1;
  for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0x0a && bytes[i + 1] === 0x0a) { split = i; break; }
  if (split < 0) throw new LogError("the inclusion proof has no checkpoint");
  const lines = new TextDecoder("latin1").decode(bytes.subarray(0, split)).split("\n");
  if (lines[0] !== PROOF_HEADER) throw new LogError("this is not a tlog proof");
  let at = lines[1]?.startsWith("extra ") ? 2 : 1; // extra data: not signed, not used
  const index = /^index (0|[1-9][0-9]{0,18})$/.exec(lines[at] ?? "");
  if (!index) throw new LogError("the inclusion proof has no index");
  const hashes = lines.slice(++at).map(canonicalBase64);
  if (hashes.length > MAX_PROOF_HASHES || hashes.some((h) => h?.length !== 32)) {
    throw new LogError("the inclusion proof's hashes are malformed");
  }
  return { index: BigInt(index[1]), hashes, note: bytes.subarray(split + 2) };
}

/**
 * Open a checkpoint note signed by *verifier* for *origin*: {size (BigInt), root}.
 * A signature line by the pinned key must verify; others (cosigners) are ignored.
 */
export async function openCheckpoint(noteBytes, verifier, origin) {
  let text;
  try {
    text = fromUtf8(noteBytes);
  } catch {
    throw new LogError("the checkpoint is not UTF-8");
  }
  const split = text.lastIndexOf("\n\n");
  if (split < 0 || !text.endsWith("\n") || /[\u0000-\u0009\u000b-\u001f]/.test(text)) {
    throw new LogError("the checkpoint is not a signed note");
  }
  const body = text.slice(0, split + 1);
  let signed = false;
  for (const line of text.slice(split + 2, -1).split("\n")) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    const raw = match ? canonicalBase64(match[2]) : null;
    if (!raw || raw.length < 5) throw new LogError("the checkpoint has a malformed signature line");
    if (match[1] !== verifier.name || !equal(raw.subarray(0, 4), verifier.keyId)) continue;
    if (!(await verifyEd25519(verifier.publicKey, utf8(body), raw.subarray(4)))) {
      throw new LogError("the checkpoint's signature by the log key does not verify");
    }
    signed = true;
  }
  if (!signed) throw new LogError("the checkpoint is not signed by the pinned log key");
  const [head, size, root] = body.split("\n");
  const hash = canonicalBase64(root ?? "");
  if (head !== origin) throw new LogError(`the checkpoint is for another log than ${origin}`);
  if (!/^(0|[1-9][0-9]{0,18})$/.test(size ?? "") || hash?.length !== 32) {
    throw new LogError("the checkpoint is malformed");
  }
  return { size: BigInt(size), root: hash };
}

const leafHash = async (entry) => sha256(concat(new Uint8Array([0]), entry));
const nodeHash = async (left, right) => sha256(concat(new Uint8Array([1]), left, right));

/** RFC 9162 section 2.1.3.2: does *proof* lead from leaf *index* of a tree of *size* to *root*? */
export async function verifyInclusion(leaf, index, size, proof, root) {
  if (index >= size) return false;
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

/**
 * RFC 9162 section 2.1.4.2: does *proof* (hashes) show the tree of *oldSize*
 * leaves with *oldRoot* is a prefix of the tree of *newSize* with *newRoot*?
 */
export async function verifyConsistency(oldSize, newSize, proof, oldRoot, newRoot) {
  if (oldSize < 1n || oldSize > newSize || proof.length > MAX_CONSISTENCY_HASHES) return false;
  if (oldSize === newSize) return proof.length === 0 && equal(oldRoot, newRoot);
  if (!proof.length) return false;
  const path = (oldSize & (oldSize - 1n)) === 0n ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1n, sn = newSize - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && equal(fr, oldRoot) && equal(sr, newRoot);
}

/** The object a registration's log entry names: "reg_" + base64url(SHA-256(registration)), unpadded. */
async function logObject(registration) {
  const b64 = btoa(String.fromCharCode(...(await sha256(registration))));
  return "reg_" + b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The registration statement's body, checked: signed by the key it names. */
async function openRegistration(wire) {
  if (wire.length > MAX_REGISTRATION_BYTES) throw new LogError("the key registration is too large");
  const text = fromUtf8(wire);
  const head = '{"registration":';
  const tail = text.lastIndexOf(',"signature":"');
  if (!text.startsWith(head) || tail < 0 || !text.endsWith('"}')) throw new LogError("the key registration is malformed");
  const signedPart = text.slice(head.length, tail);
  const body = JSON.parse(signedPart);
  const key = String(body.verify_key ?? "");
  const publicKey = key.startsWith(KEY_PREFIX) ? canonicalBase64(key.slice(KEY_PREFIX.length)) : null;
  const signature = canonicalBase64(text.slice(tail + 14, -2));
  const message = concat(utf8(SIGNATURE_DOMAIN + REGISTRATION_CONTEXT), new Uint8Array([0]), utf8(signedPart));
  if (publicKey?.length !== 32 || signature?.length !== 64 || !(await verifyEd25519(publicKey, message, signature))) {
    throw new LogError("the key registration's signature does not verify");
  }
  return body;
}

/**
 * Check that *key* (one of a user's key sets, as /api/v1/users/{id}/keys lists it)
 * was published in the log by *userId*: its registration, its log entry, and the
 * entry's inclusion *proof* (tlog-proof bytes) under the pinned *verifier* of *origin*.
 * Returns {seq, size, root}: the entry and the checkpoint that proves it. Throws LogError.
 */
export async function checkPublished(key, userId, proofBytes, verifier, origin) {
  let registration, entry, fields;
  try {
    registration = fromBase64(key.registration);
    entry = fromBase64(key.log_entry ?? "");
    fields = JSON.parse(fromUtf8(entry));
  } catch {
    throw new LogError("the key's registration or log entry is malformed");
  }
  const body = await openRegistration(registration);
  if (body.user_id !== userId || body.verify_key !== key.verify_key || body.age_recipient !== key.age_recipient) {
    throw new LogError("the registration does not match the key the gateway gave");
  }
  const expected = { action: "keys.register", outcome: "allow", actor: userId,
    object: await logObject(registration), seq: key.log_seq };
  if (Object.entries(expected).some(([k, v]) => fields?.[k] !== v)) {
    throw new LogError("the log entry does not publish this key");
  }
  const proof = parseProof(proofBytes);
  if (proof.index !== BigInt(key.log_seq)) throw new LogError("the inclusion proof is for another entry");
  const checkpoint = await openCheckpoint(proof.note, verifier, origin);
  if (!(await verifyInclusion(await leafHash(entry), proof.index, checkpoint.size, proof.hashes, checkpoint.root))) {
    throw new LogError("the key's log entry is not in the signed checkpoint");
  }
  return { seq: key.log_seq, size: Number(checkpoint.size), root: checkpoint.root };
}
