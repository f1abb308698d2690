// The keyring Worker: a person's unlocked keys, held here and nowhere else.
//
// The page (lib/keyring.js) hands it a key file and its passphrase (or asks it
// to make new keys); the file is opened here (age scrypt), and the age identity
// and the Ed25519 signing key stay in this Worker's memory until the page
// locks it (terminates the Worker). Nothing is written to storage. The page
// gets public keys, plaintexts and signatures back, never a secret.
//
// Signing: through WebCrypto with a non-extractable key where the browser has
// Ed25519, else @noble/curves (strict RFC 8032). Only carebridge statements are
// signed: bytes that start with "carebridge/v1/<context>\0" for a context of
// crypto/signing.py, so this Worker can never be made to sign anything else.
//
// Messages in:  {id, op: "unlock", bytes, passphrase} | {id, op: "create", passphrase, release, postQuantum}
//               | {id, op: "decrypt", bytes} | {id, op: "sign", bytes} | {id, op: "publicKeys"}
// Messages out: {id, ok: true, value} | {id, ok: false, error, message}
import { ed25519 } from "@noble/curves/ed25519.js";
import { AgeRuleError, decrypt } from "./lib/age.js";
import { concat, utf8 } from "./lib/bytes.js";
import { KeyFileError, makeKeyFile, openKeyFile } from "./lib/keyfile.js";

const SIGNATURE_DOMAIN = "carebridge/v1/"; // crypto/signing.py SIGNATURE_DOMAIN
// crypto/signing.py _CONTEXTS: the statements a carebridge key signs.
const CONTEXTS = ["document-manifest", "key-registration", "redaction-profile", "document-receipt",
  "referral-case", "case-note"];
const PREFIXES = CONTEXTS.map((context) => utf8(`${SIGNATURE_DOMAIN}${context}\0`));
// RFC 8410 PrivateKeyInfo for an Ed25519 seed: this header, then the 32 bytes.
const PKCS8_ED25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
  0x04, 0x22, 0x04, 0x20);
const base64 = (bytes) => btoa(String.fromCharCode(...bytes));

let keys = null; // {identity, recipient, publicKey, signer}

class RefusedError extends Error {}

/** A signer for *seed*, checked against *publicKey*: WebCrypto (non-extractable) or @noble/curves. */
async function signerFor(seed, publicKey) {
  const probe = utf8("carebridge keyring self-test");
  let key = null;
  try {
    key = await crypto.subtle.importKey("pkcs8", concat(PKCS8_ED25519, seed), { name: "Ed25519" }, false, ["sign"]);
  } catch (err) {
    if (err?.name !== "NotSupportedError" && err?.name !== "DataError") throw err;
  }
  let signer;
  if (key) {
    signer = { kind: "webcrypto", sign: async (m) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, m)) };
  } else {
    const kept = seed.slice(); // the fallback must keep the seed; it stays in this Worker
    signer = { kind: "noble", sign: async (m) => ed25519.sign(m, kept) };
  }
  if (!ed25519.verify(await signer.sign(probe), probe, publicKey, { zip215: false })) {
    throw new KeyFileError("the key file's signing key does not match its public key");
  }
  seed.fill(0);
  return signer;
}

async function hold({ identity, recipient, seed, publicKey }) {
  keys = { identity, recipient, publicKey, signer: await signerFor(seed, publicKey) };
  return publicKeys();
}

function publicKeys() {
  if (!keys) throw new RefusedError("the keys are locked");
  return { recipient: keys.recipient, signingKey: "ed25519:" + base64(keys.publicKey), signer: keys.signer.kind };
}

function isStatement(bytes) {
  return PREFIXES.some((prefix) => bytes.length > prefix.length && prefix.every((b, i) => bytes[i] === b));
}

const OPS = {
  async unlock({ bytes, passphrase }) {
    keys = null;
    return hold(await openKeyFile(bytes, passphrase, { signing: true }));
  },
  async create({ passphrase, release, postQuantum }) {
    keys = null;
    const made = await makeKeyFile(passphrase, { release, postQuantum: Boolean(postQuantum), keep: true });
    const unlocked = await hold(made);
    return { ...unlocked, sealed: made.sealed };
  },
  async decrypt({ bytes }) {
    if (!keys) throw new RefusedError("the keys are locked");
    return decrypt(bytes, { identities: [keys.identity] });
  },
  async sign({ bytes }) {
    if (!keys) throw new RefusedError("the keys are locked");
    if (!isStatement(bytes)) throw new RefusedError("only carebridge statements are signed here");
    return keys.signer.sign(bytes);
  },
  async publicKeys() {
    return publicKeys();
  },
};

self.onmessage = async ({ data }) => {
  const { id, op } = data ?? {};
  try {
    if (!Object.hasOwn(OPS, op)) throw new RefusedError("unknown keyring operation");
    const value = await OPS[op](data);
    const transfer = value instanceof Uint8Array ? [value.buffer] : [];
    self.postMessage({ id, ok: true, value }, transfer);
  } catch (err) {
    // A message for people; never the input (a passphrase or a key could be in it).
    const error = err instanceof KeyFileError ? "keyfile"
      : err instanceof RefusedError || err instanceof AgeRuleError ? "refused" : "failed";
    const message = error === "failed" ? "this could not be done with your keys" : err.message;
    self.postMessage({ id, ok: false, error, message });
  }
};
