// The person's keys for the inbox, unlocked once and kept in a dedicated Worker
// (src/inbox-keys.worker.js): this page holds no private key, only the answers.
// The interface is small on purpose (unlock, decrypt, publicKeys), so another
// keyring (one shared by every page) can take its place.

export class KeyringError extends Error {}

/** A keyring in a new Worker loaded from *workerUrl* (a released asset of this origin). */
export function keyring(workerUrl) {
  const worker = new Worker(workerUrl, { type: "module", name: "carebridge-keys" });
  const waiting = new Map();
  let nextId = 1;
  worker.addEventListener("message", ({ data }) => {
    const call = waiting.get(data.id);
    waiting.delete(data.id);
    if (call) data.error ? call.reject(new KeyringError(data.error)) : call.resolve(data.result);
  });
  worker.addEventListener("error", () => {
    for (const call of waiting.values()) call.reject(new KeyringError("the keyring stopped"));
    waiting.clear();
  });
  const call = (message, transfer = []) => new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ ...message, id }, transfer);
  });
  return {
    /** Open the key file (its armored text) with its passphrase; resolves to {recipient}. */
    unlock: ({ keyFileText, passphrase }) => call({ type: "unlock", keyFileText, passphrase }),
    /** The plaintext of an age file encrypted to the unlocked identity (a copy of *bytes* is sent). */
    decrypt: (bytes) => call({ type: "decrypt", bytes }),
    /** {recipient} once unlocked, else null. */
    publicKeys: () => call({ type: "publicKeys" }),
  };
}
