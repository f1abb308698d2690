// The sender's keys, unlocked once in a dedicated Worker (src/send-keys.worker.js):
// the send page holds no private key, only the answers. The Worker opens the key
// file (crypto/keyfile.py: an age identity and the Ed25519 signing seed) and signs
// document manifests, nothing else: the manifest context is fixed there, so the
// page cannot have it sign a key registration or a checkpoint.

export class SenderKeysError extends Error {}

/** The sender's keys in a new Worker loaded from *workerUrl* (a released asset of this origin). */
export function senderKeys(workerUrl) {
  const worker = new Worker(workerUrl, { type: "module", name: "carebridge-send-keys" });
  const waiting = new Map();
  let nextId = 1;
  worker.addEventListener("message", ({ data }) => {
    const call = waiting.get(data.id);
    waiting.delete(data.id);
    if (call) data.error ? call.reject(new SenderKeysError(data.error)) : call.resolve(data.result);
  });
  worker.addEventListener("error", () => {
    for (const call of waiting.values()) call.reject(new SenderKeysError("the key Worker stopped"));
    waiting.clear();
  });
  const call = (message) => new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ ...message, id });
  });
  return {
    /** Open the key file (armored text) with its passphrase; resolves to {recipient, signingKey}. */
    unlock: ({ keyFileText, passphrase }) => call({ type: "unlock", keyFileText, passphrase }),
    /** The Ed25519 signature (64 bytes) of a manifest's canonical JSON (text), under the manifest context. */
    signManifest: (manifestJson) => call({ type: "signManifest", manifestJson }),
    /** {recipient, signingKey} once unlocked, else null. */
    publicKeys: () => call({ type: "publicKeys" }),
  };
}
