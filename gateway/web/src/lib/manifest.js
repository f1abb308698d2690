// Checks a document's signed manifest in the page, as `carebridge fetch --link`
// does (gateway/client/linkkey.py): signature by the sender key it names,
// document id, our key among the recipients, meta ciphertext hash.
// Format: crypto/manifest.py; signatures: crypto/signing.py.
import { ed25519 } from "@noble/curves/ed25519.js";
import { concat, fromBase64, fromUtf8, sha256Hex, utf8 } from "./bytes.js";

const SIGNATURE_DOMAIN = "carebridge/v1/"; // crypto/signing.py SIGNATURE_DOMAIN
const MANIFEST_CONTEXT = "document-manifest"; // crypto/signing.py MANIFEST_CONTEXT
const KEY_PREFIX = "ed25519:";
const MAX_MANIFEST_BYTES = 64 * 1024; // crypto/manifest.py caps manifests far below this
export const PASSPHRASE_RECIPIENT = "scrypt";

export class ManifestError extends Error {
  constructor(message) {
    super(message);
    this.name = "ManifestError"; // link.js tells a manifest's reason (in words) from other failures by name
  }
}

/** The manifest bytes the sender signed: the wire is canonical JSON, so they are a slice of it. */
function signedPart(wire) {
  const text = fromUtf8(wire);
  const head = '{"manifest":';
  const tail = text.lastIndexOf(',"signature":"');
  if (!text.startsWith(head) || tail < 0 || !text.endsWith('"}')) {
    throw new ManifestError("the manifest is not in its wire form");
  }
  return { manifest: text.slice(head.length, tail), signature: text.slice(tail + 14, -2) };
}

/** Strict Ed25519 verification (as libsodium): WebCrypto, else @noble/curves. */
export async function verifyEd25519(publicKey, message, signature) {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (err) {
    if (err?.name !== "NotSupportedError") return false;
    // Browsers without WebCrypto Ed25519: the audited pure-JS implementation, strict RFC 8032.
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  }
}

/**
 * Verify the link summary's manifest for *recipient* (an age1… string or
 * PASSPHRASE_RECIPIENT); returns the manifest object or throws ManifestError.
 */
export async function checkManifest(summary, recipient) {
  const wire = fromBase64(summary.manifest);
  if (wire.length > MAX_MANIFEST_BYTES) throw new ManifestError("the manifest is too large");
  const parts = signedPart(wire);
  let manifest;
  try {
    manifest = JSON.parse(parts.manifest);
  } catch {
    throw new ManifestError("the manifest is not JSON");
  }
  const claimed = manifest?.sender?.signing_key ?? "";
  const publicKey = claimed.startsWith(KEY_PREFIX) ? fromBase64(claimed.slice(KEY_PREFIX.length)) : null;
  const signature = fromBase64(parts.signature);
  const signed = concat(utf8(SIGNATURE_DOMAIN + MANIFEST_CONTEXT), new Uint8Array([0]), utf8(parts.manifest));
  if (publicKey?.length !== 32 || signature.length !== 64 || !(await verifyEd25519(publicKey, signed, signature))) {
    throw new ManifestError("the document's manifest does not verify");
  }
  if (manifest.document_id !== summary.document_id) throw new ManifestError("the manifest is for another document");
  if (!manifest.recipients.some((r) => r.age_recipient === recipient)) {
    throw new ManifestError("the document is not encrypted to this key or a passphrase");
  }
  if ((await sha256Hex(fromBase64(summary.meta))) !== manifest.meta.sha256) {
    throw new ManifestError("the metadata does not match the manifest");
  }
  return manifest;
}

/** How the document opens: "passphrase" when its only recipients are the scrypt one. */
export function openedBy(summary) {
  const text = fromUtf8(fromBase64(summary.manifest));
  const manifest = JSON.parse(text.slice(12, text.lastIndexOf(',"signature":"')));
  return manifest.recipients.every((r) => r.age_recipient === PASSPHRASE_RECIPIENT) ? "passphrase" : "key";
}
