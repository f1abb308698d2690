// Fingerprints of public keys, as crypto/fingerprint.py computes them, for
// people to compare out of band: SHA-256(domain || label || 0x00 || bytes),
// first 120 bits, 24 Crockford base32 digits in groups of four.
import { concat, utf8 } from "./bytes.js";

const DOMAIN = "carebridge/v1/fingerprint/"; // crypto/fingerprint.py FINGERPRINT_DOMAIN
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DIGITS = 24; // 120 bits / 5 bits a digit
const GROUP = 4;

async function render(label, bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", concat(utf8(DOMAIN + label), new Uint8Array([0]), bytes)));
  let bits = 0n;
  for (const b of digest.subarray(0, 15)) bits = (bits << 8n) | BigInt(b);
  let out = "";
  for (let i = DIGITS - 1; i >= 0; i--) out += ALPHABET[Number((bits >> BigInt(5 * i)) & 31n)];
  return out.match(new RegExp(`.{${GROUP}}`, "g")).join("-");
}

export const recipientFingerprint = (recipient) => render("age-recipient", utf8(recipient));
export const signingKeyFingerprint = (publicKey) => render("ed25519", publicKey);
