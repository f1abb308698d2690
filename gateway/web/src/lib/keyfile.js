// The carebridge key file (crypto/keyfile.py) opened in the page: an armored
// age file sealed with a passphrase whose plaintext is an age identity file
// starting with MAGIC_LINE. The unlocked identity stays in memory only.
import { identityToRecipient } from "age-encryption";
import { decrypt } from "./age.js";
import { fromUtf8 } from "./bytes.js";

const MAGIC_LINE = "# carebridge key file v1";
export const MAX_KEY_FILE_SIZE = 64 * 1024; // crypto/keyfile.py: ~5 KB even with a post-quantum key

export class KeyFileError extends Error {}

/** {identity, recipient} from a key file's bytes and passphrase; throws KeyFileError. */
export async function openKeyFile(bytes, passphrase) {
  if (bytes.length > MAX_KEY_FILE_SIZE) throw new KeyFileError("that file is too large to be a key file");
  let plain;
  try {
    plain = fromUtf8(await decrypt(bytes, { passphrase }));
  } catch {
    throw new KeyFileError("the key file does not open with this passphrase");
  }
  if (!plain.startsWith(MAGIC_LINE + "\n")) throw new KeyFileError("this is not a carebridge key file");
  const keys = plain.split("\n").filter((l) => l.startsWith("AGE-SECRET-KEY-"));
  if (keys.length !== 1) throw new KeyFileError("a key file holds exactly one identity");
  return { identity: keys[0], recipient: await identityToRecipient(keys[0]) };
}
