// A clinic's redaction profile, checked in the page as `carebridge send` checks it
// (gateway/client/clearance.py clinic_profile, redaction/profile.py verify_signed_profile):
// the gateway serves the signed wire form; it must be canonical JSON, signed for the
// sender's organisation by the signer it names, under one of the Ed25519 keys that signer
// registered. Only then does the profile reach the gate Worker (whose Python has no
// signature code: the page's stand-in refuses), as the profile JSON the gate parses.
import { canonicalJson } from "./manifest-make.js";
import { concat, fromBase64, fromUtf8, utf8 } from "./bytes.js";
import { verifyEd25519 } from "./manifest.js";
import { api } from "./session.js";

const SIGNATURE_DOMAIN = "carebridge/v1/"; // crypto/signing.py SIGNATURE_DOMAIN
const PROFILE_CONTEXT = "redaction-profile"; // crypto/signing.py REDACTION_PROFILE_CONTEXT
const STATEMENT_FORMAT = "carebridge-signed-redaction-profile/1"; // redaction/profile.py
const MAX_SIGNED_BYTES = 72 * 1024; // redaction/profile.py MAX_SIGNED_BYTES
const KEY_PREFIX = "ed25519:";

export class ProfileError extends Error {}

const untrusted = (why) => new ProfileError(`your clinic's redaction profile cannot be trusted: ${why}`);

/** The Ed25519 public keys *signerId* registered (the directory's key history). */
async function registeredKeys(signerId) {
  const history = await api(`/api/v1/users/${encodeURIComponent(signerId)}/keys`);
  return history.keys.map((k) => k.verify_key).filter((k) => typeof k === "string" && k.startsWith(KEY_PREFIX))
    .map((k) => fromBase64(k.slice(KEY_PREFIX.length))).filter((k) => k.length === 32);
}

/**
 * The clinic of *me* ({org_id}): null when it has no profile, else {id, version, document} where
 * document is the verified profile (its JSON object) for the gate. Throws ProfileError in words.
 */
export async function clinicProfile(me) {
  const answer = await api("/api/v1/redaction-profile");
  if (answer === null) return null;
  let wire, statement, signature;
  try {
    wire = fromUtf8(fromBase64(answer.document));
    if (wire.length > MAX_SIGNED_BYTES) throw new Error("too large");
    const parsed = JSON.parse(wire);
    ({ statement } = parsed);
    signature = fromBase64(parsed.signature);
    // Canonical or nothing: the bytes signed are the statement's canonical JSON, as the CLI re-makes them.
    if (canonicalJson(parsed) !== wire || statement?.format !== STATEMENT_FORMAT) throw new Error("not canonical");
  } catch {
    throw untrusted("the signed profile is not in the signed profile format");
  }
  if (statement.org_id !== me.org_id || statement.signer !== answer.signer_id) {
    throw untrusted("the signed profile names another clinic or signer");
  }
  const signed = concat(utf8(`${SIGNATURE_DOMAIN}${PROFILE_CONTEXT}`), new Uint8Array([0]),
    utf8(canonicalJson(statement)));
  const keys = await registeredKeys(answer.signer_id);
  let verified = false;
  for (const key of keys) verified ||= signature.length === 64 && await verifyEd25519(key, signed, signature);
  if (!verified) throw untrusted("the profile's signature does not verify under its signer's registered keys");
  const { profile } = statement;
  if (profile?.id !== answer.id || profile?.version !== answer.version) {
    throw new ProfileError("your clinic's redaction profile is not the one the gateway says it is");
  }
  return { id: profile.id, version: profile.version, document: profile };
}
