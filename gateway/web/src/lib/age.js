// age in the page: typage (npm age-encryption, pinned) wrapped with the
// rules our CLI keeps (crypto/age), so a file the CLI refuses is refused here.
//
// - Armor is detected here: typage reads only binary files by itself.
// - A passphrase (scrypt) stanza must be alone in its file (age's spec).
// - scrypt work factors above 2^MAX_SCRYPT_LOG_N are refused before any work:
//   typage's own ceiling, and a page must not freeze on a hostile header.
// - Post-quantum and classical recipients never share a file (a classical
//   stanza would undo the post-quantum protection); our CLI refuses such files.
import { Decrypter, Encrypter, armor } from "age-encryption";

export const MAX_SCRYPT_LOG_N = 20; // typage refuses more; 2^20 costs 1 GiB and seconds in a page
export const DEFAULT_SCRYPT_LOG_N = 18; // crypto/age/scrypt.py DEFAULT_LOG_N: what `carebridge keygen` uses
const MAX_HEADER_BYTES = 64 * 1024; // far above any header we write (one stanza per recipient)
const ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----";
const WHITESPACE = new Set([0x09, 0x0a, 0x0d, 0x20]);
const PQ_STANZA = "mlkem768x25519";
const CLASSICAL_STANZA = "X25519";

export class AgeRuleError extends Error {}

/** The binary age file: armor removed when the bytes are armored (leading whitespace allowed). */
export function dearmor(bytes) {
  let start = 0;
  while (start < bytes.length && WHITESPACE.has(bytes[start])) start++;
  const head = new TextDecoder("latin1").decode(bytes.subarray(start, start + ARMOR_BEGIN.length));
  return head === ARMOR_BEGIN ? armor.decode(new TextDecoder().decode(bytes)) : bytes;
}

/** The stanza lines of an age header: [[type, ...args], ...]. */
export function stanzas(file) {
  const end = Math.min(file.length, MAX_HEADER_BYTES);
  const text = new TextDecoder("latin1").decode(file.subarray(0, end));
  const stop = text.indexOf("\n---");
  if (!text.startsWith("age-encryption.org/v1\n") || stop < 0) {
    throw new AgeRuleError("this is not an age file");
  }
  return text.slice(0, stop).split("\n").filter((l) => l.startsWith("-> ")).map((l) => l.slice(3).split(" "));
}

/** Refuse what our CLI refuses; returns the header's stanzas. */
export function checkHeader(file) {
  const found = stanzas(file);
  const types = new Set(found.map((s) => s[0]));
  if (types.has("scrypt")) {
    if (found.length !== 1) throw new AgeRuleError("a passphrase file must have no other recipient");
    const logN = Number(found[0][2]);
    if (!Number.isInteger(logN) || logN < 1 || logN > MAX_SCRYPT_LOG_N) {
      throw new AgeRuleError(`the passphrase work factor is above 2^${MAX_SCRYPT_LOG_N}; open it with the CLI`);
    }
  }
  if (types.has(PQ_STANZA) && types.has(CLASSICAL_STANZA)) {
    throw new AgeRuleError("the file mixes post-quantum and classical recipients");
  }
  return found;
}

/**
 * Decrypt *bytes* (binary or armored age) with identities (strings) or a
 * passphrase; throws AgeRuleError for refused files and Error otherwise.
 */
export async function decrypt(bytes, { identities = [], passphrase = null } = {}) {
  const file = dearmor(bytes);
  checkHeader(file);
  const decrypter = new Decrypter();
  for (const identity of identities) decrypter.addIdentity(identity);
  if (passphrase !== null) decrypter.addPassphrase(passphrase);
  return decrypter.decrypt(file);
}

/** Armored age file of *bytes* sealed to *passphrase* alone (scrypt), as crypto/keyfile.py seals. */
export async function sealWithPassphrase(bytes, passphrase, logN = DEFAULT_SCRYPT_LOG_N) {
  if (!Number.isInteger(logN) || logN < 1 || logN > MAX_SCRYPT_LOG_N) {
    throw new AgeRuleError(`the passphrase work factor must be at most 2^${MAX_SCRYPT_LOG_N}`);
  }
  const encrypter = new Encrypter();
  encrypter.setPassphrase(passphrase);
  encrypter.setScryptWorkFactor(logN);
  return armor.encode(await encrypter.encrypt(bytes));
}
