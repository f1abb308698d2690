// Referral cases, notes and receipts in the page, byte for byte as the CLI makes
// and reads them (crypto/case.py, crypto/receipt.py, crypto/statement.py): a
// statement is canonical JSON {"<kind>": {...}, "signature": B64}, signed with
// Ed25519 over "carebridge/v1/<context>\0" + the canonical JSON of the body. The
// keyring Worker signs (it signs only such statements); this module builds the
// bodies and checks what others signed, with the key each names. Whether that key
// is one its signer registered is the caller's check.
import { fromBase64, fromUtf8, utf8 } from "./bytes.js";
import { canonicalJson, wholeSeconds } from "./manifest-make.js";
import { verifyEd25519 } from "./manifest.js";

const SIGNATURE_DOMAIN = "carebridge/v1/"; // crypto/signing.py
const VERSION = 1;
export const MAX_HEADER_FIELD = 2000; // crypto/case.py: characters of one header field
export const MAX_NOTE_CHARS = 4000; // crypto/case.py
export const MAX_PEOPLE = 50; // crypto/case.py
const MAX_CASE_BYTES = 16 * 1024; // crypto/case.py: a statement, a header's or a note's plaintext
const MAX_RECEIPT_BYTES = 4 * 1024; // crypto/receipt.py
const CASE_ID = /^case_[A-Za-z0-9_-]{22,60}$/;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const KEY_PREFIX = "ed25519:";
const CASE_ID_BYTES = 16; // cases.py open_case: "case_" + secrets.token_urlsafe(16)

// kind -> [context (crypto/signing.py), fields, largest wire]
const KINDS = {
  case: ["referral-case", ["case_id", "clinic_org", "header_sha256", "people", "spa_org", "time", "user_id",
    "verify_key", "version"], MAX_CASE_BYTES],
  note: ["case-note", ["body_sha256", "case_id", "time", "user_id", "verify_key", "version"], MAX_CASE_BYTES],
  receipt: ["document-receipt", ["document_id", "manifest_sha256", "time", "user_id", "verify_key", "version"],
    MAX_RECEIPT_BYTES],
};

export class CaseFormatError extends Error {}

const base64 = (bytes) => btoa(String.fromCharCode(...bytes));

export function newCaseId() {
  const raw = crypto.getRandomValues(new Uint8Array(CASE_ID_BYTES));
  return "case_" + base64(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** What the Worker signs for a statement of *kind*: the domain, its context, NUL, the body. */
export function toSign(kind, body) {
  return utf8(`${SIGNATURE_DOMAIN}${KINDS[kind][0]}\0${canonicalJson(body)}`);
}

/** A statement's wire bytes: *body* and the *signature* the Worker made over toSign(kind, body). */
export function wire(kind, body, signature) {
  return utf8(canonicalJson({ [kind]: body, signature: base64(signature) }));
}

/** Canonical JSON only (one value, one spelling), as crypto/canonical.py parses it; else CaseFormatError. */
function parseCanonical(bytes, max, what) {
  if (bytes.length > max) throw new CaseFormatError(`${what}: too large`);
  let value;
  try {
    const text = fromUtf8(bytes);
    value = JSON.parse(text);
    if (canonicalJson(value) !== text) throw new Error();
  } catch {
    throw new CaseFormatError(`${what}: not canonical JSON`);
  }
  return value;
}

/**
 * A statement of *kind* read and its signature checked with the key it names:
 * the body, with `verifyKey`. Throws CaseFormatError naming what is wrong.
 */
export async function readStatement(kind, bytes) {
  const [context, fields, max] = KINDS[kind];
  const outer = parseCanonical(bytes, max, kind);
  if (!outer || typeof outer !== "object" || Object.keys(outer).sort().join() !== [kind, "signature"].sort().join()) {
    throw new CaseFormatError(`${kind}: expected {${kind}, signature}`);
  }
  const body = outer[kind];
  if (!body || typeof body !== "object" || Object.keys(body).sort().join() !== fields.join()) {
    throw new CaseFormatError(`${kind}: expected exactly the fields ${fields.join(", ")}`);
  }
  if (body.version !== VERSION) throw new CaseFormatError(`${kind}: not version ${VERSION}`);
  const ids = { case: ["clinic_org", "spa_org", "user_id"], note: ["user_id"], receipt: ["document_id", "user_id"] };
  if (ids[kind].some((name) => typeof body[name] !== "string" || !ID.test(body[name]))) {
    throw new CaseFormatError(`${kind}: an id is malformed`);
  }
  if ("case_id" in body && !(typeof body.case_id === "string" && CASE_ID.test(body.case_id))) {
    throw new CaseFormatError(`${kind}: case_id is not a case id`);
  }
  const digest = body.header_sha256 ?? body.body_sha256 ?? body.manifest_sha256;
  if (typeof digest !== "string" || !SHA256.test(digest)) throw new CaseFormatError(`${kind}: a digest is malformed`);
  if (typeof body.time !== "string" || !TIME.test(body.time) || Number.isNaN(Date.parse(body.time))) {
    throw new CaseFormatError(`${kind}: the time is not YYYY-MM-DDTHH:MM:SSZ`);
  }
  if (kind === "case") checkPeople(body);
  const key = typeof body.verify_key === "string" && body.verify_key.startsWith(KEY_PREFIX)
    ? decoded(body.verify_key.slice(KEY_PREFIX.length)) : null;
  const signature = decoded(outer.signature);
  if (key?.length !== 32 || signature?.length !== 64 || !(await verifyEd25519(key, toSign(kind, body), signature))) {
    throw new CaseFormatError(`${kind}: the signature does not verify`);
  }
  return body;
}

/** Base64 bytes, or null when *text* is not base64 (the signature check then refuses). */
function decoded(text) {
  try {
    return typeof text === "string" ? fromBase64(text) : null;
  } catch {
    return null;
  }
}

function checkPeople(body) {
  const { people } = body;
  if (!Array.isArray(people) || people.length < 1 || people.length > MAX_PEOPLE
      || !people.every((p) => typeof p === "string" && ID.test(p))) {
    throw new CaseFormatError(`case: people is a list of 1 to ${MAX_PEOPLE} user ids`);
  }
  if (canonicalJson(people) !== canonicalJson([...new Set(people)].sort())) {
    throw new CaseFormatError("case: people are not sorted without repeats");
  }
  if (!people.includes(body.user_id)) throw new CaseFormatError("case: the opener is not among the people");
}

const stamp = (now) => wholeSeconds(now);

/** The opener's statement body (case.py sign_case); people sorted without repeats. */
export function caseBody({ caseId, clinicOrg, spaOrg, people, headerSha256, userId, verifyKey, now = new Date() }) {
  return { case_id: caseId, clinic_org: clinicOrg, header_sha256: headerSha256,
    people: [...new Set(people)].sort(), spa_org: spaOrg, time: stamp(now), user_id: userId,
    verify_key: verifyKey, version: VERSION };
}

export function noteBody({ caseId, bodySha256, userId, verifyKey, now = new Date() }) {
  return { body_sha256: bodySha256, case_id: caseId, time: stamp(now), user_id: userId, verify_key: verifyKey,
    version: VERSION };
}

export function receiptBody({ documentId, manifestSha256, userId, verifyKey, now = new Date() }) {
  return { document_id: documentId, manifest_sha256: manifestSha256, time: stamp(now), user_id: userId,
    verify_key: verifyKey, version: VERSION };
}

/** The case header's plaintext (case.py header_json). */
export function headerJson({ caseId, clientName = "", contact = "", reason = "" }) {
  const fields = { client_name: clientName, contact, reason };
  for (const [name, value] of Object.entries(fields)) {
    if ([...value].length > MAX_HEADER_FIELD) {
      throw new CaseFormatError(`the case header's ${name} is longer than ${MAX_HEADER_FIELD} characters`);
    }
  }
  return utf8(canonicalJson({ case_id: caseId, ...fields, version: VERSION }));
}

/** The decrypted header's fields {client_name, contact, reason} (case.py read_header). */
export function readHeader(bytes, caseId) {
  const header = parseCanonical(bytes, MAX_CASE_BYTES, "case header");
  const names = ["case_id", "client_name", "contact", "reason", "version"];
  if (!header || typeof header !== "object" || Object.keys(header).sort().join() !== names.join()
      || header.version !== VERSION || !["client_name", "contact", "reason"].every((f) => typeof header[f] === "string")) {
    throw new CaseFormatError("case header: not a version 1 case header");
  }
  if (header.case_id !== caseId) throw new CaseFormatError("case header: it belongs to another case");
  return { client_name: header.client_name, contact: header.contact, reason: header.reason };
}

/** A note's plaintext (case.py note_json). */
export function noteJson({ caseId, text }) {
  if (!text.trim() || [...text].length > MAX_NOTE_CHARS) {
    throw new CaseFormatError(`a note is 1 to ${MAX_NOTE_CHARS} characters`);
  }
  return utf8(canonicalJson({ case_id: caseId, text, version: VERSION }));
}

export function readNoteText(bytes, caseId) {
  const note = parseCanonical(bytes, MAX_CASE_BYTES, "note");
  if (!note || typeof note !== "object" || Object.keys(note).sort().join() !== "case_id,text,version"
      || note.version !== VERSION || typeof note.text !== "string") {
    throw new CaseFormatError("note: not a version 1 note");
  }
  if (note.case_id !== caseId) throw new CaseFormatError("note: it belongs to another case");
  return note.text;
}
