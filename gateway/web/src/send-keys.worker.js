// The send page's key Worker: it opens the sender's key file once, keeps the
// Ed25519 signing key (a non-extractable WebCrypto key when the browser has
// Ed25519, else the seed) in its own memory and signs manifests with it. No key
// goes back to the page, nor anywhere else (no storage, no network: its CSP
// allows no connection). The page's side is lib/sender-keys.js.
import { ed25519 } from "@noble/curves/ed25519.js";
import { identityToRecipient } from "age-encryption";
import { decrypt } from "./lib/age.js";
import { concat, fromUtf8, utf8 } from "./lib/bytes.js";
import { KeyFileError, MAX_KEY_FILE_SIZE } from "./lib/keyfile.js";

const MAGIC_LINE = "# carebridge key file v1"; // crypto/keyfile.py
const SIGNING_SECRET = /^# signing secret key: CAREBRIDGE-SIGNING-KEY-1-([0-9A-F]{64})$/; // crypto/signing.py
const SIGNATURE_DOMAIN = "carebridge/v1/"; // crypto/signing.py SIGNATURE_DOMAIN
const MANIFEST_CONTEXT = "document-manifest"; // crypto/signing.py MANIFEST_CONTEXT
// RFC 8410 PKCS#8 wrapping of a 32-byte Ed25519 seed, for WebCrypto's importKey.
const PKCS8_ED25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
  0x04, 0x22, 0x04, 0x20]);

let signer = null; // (bytes) => Promise<signature bytes>
let publicKeys = null;

const base64 = (bytes) => btoa(String.fromCharCode(...bytes));

/** A signer for *seed*: WebCrypto's non-extractable key (the seed then zeroed), else @noble/curves. */
async function makeSigner(seed) {
  try {
    const key = await crypto.subtle.importKey("pkcs8", concat(PKCS8_ED25519, seed), { name: "Ed25519" }, false, ["sign"]);
    seed.fill(0);
    return async (message) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
  } catch (err) {
    if (err?.name !== "NotSupportedError") throw err;
    return async (message) => ed25519.sign(message, seed);
  }
}

async function unlock(keyFileText, passphrase) {
  const bytes = utf8(keyFileText);
  if (bytes.length > MAX_KEY_FILE_SIZE) throw new KeyFileError("that file is too large to be a key file");
  let plain;
  try {
    plain = fromUtf8(await decrypt(bytes, { passphrase }));
  } catch {
    throw new KeyFileError("the key file does not open with this passphrase");
  }
  if (!plain.startsWith(MAGIC_LINE + "\n")) throw new KeyFileError("this is not a carebridge key file");
  const lines = plain.split("\n");
  const identities = lines.filter((l) => l.startsWith("AGE-SECRET-KEY-"));
  const seeds = lines.map((l) => SIGNING_SECRET.exec(l)).filter(Boolean);
  if (identities.length !== 1 || seeds.length !== 1) {
    throw new KeyFileError("a key file holds exactly one identity and one signing key");
  }
  const seed = Uint8Array.from(seeds[0][1].match(/../g), (h) => Number.parseInt(h, 16));
  const verifyKey = ed25519.getPublicKey(seed);
  publicKeys = { recipient: await identityToRecipient(identities[0]), signingKey: "ed25519:" + base64(verifyKey) };
  signer = await makeSigner(seed);
  return publicKeys;
}

async function answer({ type, keyFileText, passphrase, manifestJson }) {
  if (type === "unlock") return unlock(keyFileText, passphrase);
  if (type === "publicKeys") return publicKeys;
  if (type === "signManifest") {
    if (!signer) throw new Error("the keys are not unlocked");
    return signer(concat(utf8(SIGNATURE_DOMAIN + MANIFEST_CONTEXT), new Uint8Array([0]), utf8(manifestJson)));
  }
  throw new Error("unknown request");
}

self.addEventListener("message", async ({ data }) => {
  try {
    const result = await answer(data);
    self.postMessage({ id: data.id, result });
  } catch (err) {
    self.postMessage({ id: data.id, error: err.message || "the key Worker failed" });
  }
});
