// What `carebridge send` signs and sends, built in the page byte for byte as the
// CLI builds it (gateway/client/transfer.py, crypto/manifest.py): the meta object,
// the policy JSON and the manifest, all canonical JSON (crypto/canonical.py).
import { utf8 } from "./bytes.js";

export const MAX_NOTE_CHARS = 2000; // gateway/client/transfer.py
export const MAX_META_BYTES = 16 * 1024; // gateway/client/transfer.py: the plaintext meta object
const MAX_SAFE_INTEGER = 2 ** 53 - 1; // crypto/canonical.py
const DEFAULT_LINK_LIFETIME = 86400; // transfer.py _DEFAULT_LINK_LIFETIME (seconds)
const DOCUMENT_ID_BYTES = 16; // transfer.py: "doc_" + secrets.token_urlsafe(16)

export class SendError extends Error {}

/**
 * Canonical JSON: keys sorted by code point, no whitespace, integers only.
 * JSON.stringify escapes exactly what Python's json.dumps(ensure_ascii=False)
 * escapes (quote, backslash, controls, with lowercase \u00xx), so only the key
 * order and the refusals are ours.
 */
export function canonicalJson(value) {
  const sorted = (v) => {
    if (typeof v === "number" && !(Number.isInteger(v) && Math.abs(v) <= MAX_SAFE_INTEGER)) {
      throw new SendError("canonical JSON has integers of at most 2^53-1 only");
    }
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.keys(v).sort(byCodePoint).map((k) => [k, sorted(v[k])]));
    }
    return v;
  };
  return JSON.stringify(sorted(value));
}

function byCodePoint(a, b) {
  const x = [...a].map((c) => c.codePointAt(0)), y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** "YYYY-MM-DDTHH:MM:SSZ": UTC, whole seconds (policy_time and the manifest's created_at). */
export const wholeSeconds = (date) => new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString()
  .replace(/\.000Z$/, "Z");

/** "doc_" + 22 base64url characters of 16 random bytes, as secrets.token_urlsafe(16) makes. */
export function newDocumentId() {
  const raw = crypto.getRandomValues(new Uint8Array(DOCUMENT_ID_BYTES));
  return "doc_" + btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The content type mimetypes.guess_type gives the CLI for the names this page takes. */
const contentType = (name) => (/\.pdf$/i.test(name) ? "application/pdf" : "application/octet-stream");

/** The meta object's bytes (transfer.py _meta): name, type, note, SHA-256 and size of what is encrypted. */
export function metaJson({ name, sha256, size, note }) {
  if ([...note].length > MAX_NOTE_CHARS) throw new SendError(`the note is longer than ${MAX_NOTE_CHARS} characters`);
  const meta = utf8(canonicalJson({ content_type: contentType(name), name, note, sha256, size, version: 1 }));
  if (meta.length > MAX_META_BYTES) throw new SendError("the file name is too long");
  return meta;
}

/**
 * The policy (transfer.py policy_json) for recipients *ids* sent at *now*: version 1
 * with expiry and downloads per recipient, version 2 once a version-2 field is set
 * (spa: the org when every recipient came from one whole spa; notBeforeSeconds; maxTotalDownloads;
 * networks (CIDRs, in the order given); purposes of use; links: "sign_in" or "bearer", with
 * linkLifetimeSeconds and linkUses or the CLI's defaults; retentionSeconds; legalHold).
 */
export function policyJson(ids, { expiresInSeconds = null, maxDownloads = null, maxTotalDownloads = null,
  spa = null, notBeforeSeconds = null, networks = [], purposes = [], links = null, linkLifetimeSeconds = null,
  linkUses = null, retentionSeconds = null, legalHold = false } = {}, now = new Date()) {
  const start = Math.floor(now.getTime() / 1000) * 1000;
  const policy = { version: 1, recipients: [...ids].sort(byCodePoint) };
  if (expiresInSeconds !== null) policy.expires_at = wholeSeconds(new Date(start + expiresInSeconds * 1000));
  if (maxDownloads !== null) policy.max_downloads = maxDownloads;
  const purposeList = purposes.length ? [...new Set(purposes)].sort(byCodePoint) : null;
  if (!links && (linkLifetimeSeconds !== null || linkUses !== null)) {
    throw new SendError("a link lifetime and link uses need a links mode");
  }
  // The CLI's defaults: a link lives a day and is used once (`|| ` as transfer.py's `or`).
  const linkPolicy = links
    ? { mode: links, lifetime: linkLifetimeSeconds || DEFAULT_LINK_LIFETIME, uses: linkUses || 1 } : null;
  const v2 = Object.entries({ spa,
    not_before: notBeforeSeconds !== null ? wholeSeconds(new Date(start + notBeforeSeconds * 1000)) : null,
    max_total_downloads: maxTotalDownloads, networks: networks.length ? [...networks] : null, purposes: purposeList,
    retention: retentionSeconds, legal_hold: legalHold ? true : null, links: linkPolicy })
    .filter(([, v]) => v !== null);
  if (v2.length) Object.assign(policy, Object.fromEntries(v2), { version: 2 });
  return policy;
}

/**
 * The unsigned manifest (crypto/manifest.py, format step 2). *recipients* are
 * [userId, ageRecipient] pairs, the sender's own last; *overrides* {rule_id, reason};
 * digests are {sha256, size} of the two age files as stored. *webRelease*: the
 * root hash of the web release signing it (format: the optional web_release). *caseId*: the
 * referral case the document goes under (format: the optional case_id), as `send --case`.
 * *redactionProfile*: {id, version} of the clinic's profile the gate applied, or null.
 */
export function manifestObject({ documentId, sender, recipients, content, meta, policyDigest, overrides = [],
  createdAt = new Date(), webRelease = null, caseId = null, redactionProfile = null }) {
  const release = /^[0-9a-f]{64}$/.test(webRelease ?? "") ? { web_release: webRelease } : {};
  const profile = redactionProfile
    ? { redaction_profile: { id: redactionProfile.id, version: redactionProfile.version } } : {};
  return {
    ...release, ...profile,
    ...(caseId ? { case_id: caseId } : {}),
    content, created_at: wholeSeconds(createdAt), document_id: documentId, meta,
    overrides: overrides.map((o) => ({ reason: o.reason, rule_id: o.rule_id })),
    policy_digest: policyDigest,
    recipients: recipients.map(([userId, ageRecipient]) => ({ age_recipient: ageRecipient, user_id: userId })),
    sender: { signing_key: sender.signingKey, user_id: sender.userId }, version: 1,
  };
}

/** The wire form (format step 4): canonical JSON of {manifest, signature (base64)}. */
export function manifestWire(manifestJson, signature) {
  const b64 = btoa(String.fromCharCode(...signature));
  // manifestJson is canonical already; splicing keeps the signed bytes exactly the wire's.
  return utf8(`{"manifest":${manifestJson},"signature":${JSON.stringify(b64)}}`);
}
