// Publishing one's keys from the page, as `carebridge keys register` does
// (crypto/registration.py): the statement names the user, the age recipient,
// the Ed25519 public key and the time; it is signed by that key (proof of
// possession) in the keyring Worker and posted to /api/v1/keys, which puts it
// on the log, where senders check it before they encrypt to the key.
import { sign } from "./keyring.js";
import { concat, utf8 } from "./bytes.js";
import { api } from "./session.js";

const SIGNED_PREFIX = "carebridge/v1/key-registration\0"; // crypto/signing.py domain + KEY_REGISTRATION_CONTEXT
const VERSION = 1;
const base64 = (bytes) => btoa(String.fromCharCode(...bytes));

/**
 * Canonical JSON (crypto/canonical.py) of an object of strings, whole numbers
 * and such objects: keys sorted, no whitespace. JSON.stringify escapes strings
 * as RFC 8785 does, which is the form canonical.py writes.
 */
export function canonicalJson(value) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) throw new TypeError("only whole numbers");
  return JSON.stringify(value);
}

/** The root hash of the web release this page was served from (its shell's meta), or null. */
function release() {
  return globalThis.document?.querySelector('meta[name="carebridge-release"]')?.content ?? null;
}

/** "2026-11-29T19:41:18Z" (registration times have whole seconds). */
const wholeSeconds = (now) => now.toISOString().replace(/\.\d{3}Z$/, "Z");

/** The signed registration's wire bytes for the keyring's unlocked keys. */
export async function signedRegistration({ userId, recipient, signingKey, now = new Date(), webRelease = release() }) {
  const body = { age_recipient: recipient, time: wholeSeconds(now), user_id: userId, verify_key: signingKey,
    version: VERSION };
  if (/^[0-9a-f]{64}$/.test(webRelease ?? "")) body.web_release = webRelease; // the release that registers the keys
  const statement = canonicalJson(body);
  const signature = await sign(concat(utf8(SIGNED_PREFIX), utf8(statement)));
  return canonicalJson({ registration: body, signature: base64(signature) });
}

/** Register the unlocked keys for *userId*; the API's key record ({log_seq, fingerprints, …}). */
export async function registerKeys({ userId, recipient, signingKey }) {
  const wire = await signedRegistration({ userId, recipient, signingKey });
  return api("/api/v1/keys", { method: "POST", body: wire, headers: { "Content-Type": "application/json" } });
}
