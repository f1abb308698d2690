// The carebridge key file (crypto/keyfile.py) opened in the page: an armored
// age file sealed with a passphrase whose plaintext is an age identity file
// starting with MAGIC_LINE. Unlocked or new secrets stay in memory only.
import { ed25519 } from "@noble/curves/ed25519.js";
import { generateHybridIdentity, generateX25519Identity, identityToRecipient } from "age-encryption";
import { decrypt, sealWithPassphrase } from "./age.js";
import { fromUtf8 } from "./bytes.js";

const MAGIC_LINE = "# carebridge key file v1";
export const MAX_KEY_FILE_SIZE = 64 * 1024; // crypto/keyfile.py: ~5 KB even with a post-quantum key

export class KeyFileError extends Error {}

/**
 * The secrets of a key file's bytes, unlocked with *passphrase*: {identity,
 * recipient}, and with *signing* also {seed, publicKey} (the keyring Worker
 * asks; a page that only decrypts does not). Kept in memory only. Throws KeyFileError.
 */
export async function openKeyFile(bytes, passphrase, { signing = false } = {}) {
  if (bytes.length > MAX_KEY_FILE_SIZE) throw new KeyFileError("that file is too large to be a key file");
  let plain;
  try {
    plain = fromUtf8(await decrypt(bytes, { passphrase }));
  } catch {
    throw new KeyFileError("the key file does not open with this passphrase");
  }
  if (!plain.startsWith(MAGIC_LINE + "\n")) throw new KeyFileError("this is not a carebridge key file");
  const lines = plain.split("\n");
  const keys = lines.filter((l) => l.startsWith("AGE-SECRET-KEY-"));
  if (keys.length !== 1) throw new KeyFileError("a key file holds exactly one identity");
  const secrets = lines.filter((l) => l.startsWith(SIGNING_SECRET_LINE)).map((l) => l.slice(SIGNING_SECRET_LINE.length));
  if (secrets.length !== 1 || !SIGNING_SECRET.test(secrets[0])) {
    throw new KeyFileError("a key file holds exactly one signing key");
  }
  const opened = { identity: keys[0], recipient: await identityToRecipient(keys[0]) };
  if (!signing) return opened;
  const seed = fromHex(secrets[0].slice(SIGNING_SECRET_PREFIX.length));
  return { ...opened, seed, publicKey: ed25519.getPublicKey(seed) };
}

const SIGNING_SECRET_PREFIX = "CAREBRIDGE-SIGNING-KEY-1-"; // crypto/signing.py SECRET_KEY_PREFIX
const SIGNING_SECRET_LINE = "# signing secret key: "; // crypto/keyfile.py _SIGNING_SECRET
const SIGNING_SECRET = /^CAREBRIDGE-SIGNING-KEY-1-[0-9A-F]{64}$/;
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const fromHex = (text) => Uint8Array.from(text.match(/../g), (pair) => Number.parseInt(pair, 16));
const base64 = (bytes) => btoa(String.fromCharCode(...bytes));

/** "2026-11-29T19:41:18Z", as crypto/keyfile.py writes the creation time. */
const created = (now) => now.toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * A new user's keys, as `carebridge keygen [--pq]` makes them: an age X25519
 * (or, with *postQuantum*, ML-KEM-768 + X25519 hybrid) identity and an Ed25519
 * signing key, sealed with *passphrase*, noting the web *release* (root hash)
 * that made them. Returns the armored key file and the public halves; with
 * *keep*, also the secrets ({identity, seed}) for the keyring Worker that called it.
 */
export async function makeKeyFile(passphrase, { release = "", now = new Date(), postQuantum = false,
  keep = false } = {}) {
  const identity = await (postQuantum ? generateHybridIdentity() : generateX25519Identity());
  const recipient = await identityToRecipient(identity);
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const publicKey = ed25519.getPublicKey(seed);
  const signingKey = "ed25519:" + base64(publicKey);
  // Which served code made the keys: if a release is ever found bad, its key files can be told apart.
  const madeBy = /^[0-9a-f]{64}$/.test(release) ? [`# web release: ${release}`] : [];
  const lines = [MAGIC_LINE, `# created: ${created(now)}`, ...madeBy, `# public key: ${recipient}`,
    `# signing public key: ${signingKey}`, `# signing secret key: ${SIGNING_SECRET_PREFIX}${hex(seed).toUpperCase()}`,
    identity];
  const sealed = await sealWithPassphrase(new TextEncoder().encode(lines.join("\n") + "\n"), passphrase);
  const result = { sealed, recipient, signingKey, publicKey };
  if (keep) return { ...result, identity, seed };
  seed.fill(0);
  return result;
}
