// The inbox's keyring Worker: it opens the person's key file once and keeps the
// age identity in its own memory, answering decrypt requests; the identity never
// goes back to the page, nor anywhere else (no storage, no network).
// The page's side is lib/inbox-keyring.js.
import { decrypt } from "./lib/age.js";
import { utf8 } from "./lib/bytes.js";
import { openKeyFile } from "./lib/keyfile.js";

let identity = null;
let recipient = null;

async function answer({ type, keyFileText, passphrase, bytes }) {
  if (type === "unlock") {
    ({ identity, recipient } = await openKeyFile(utf8(keyFileText), passphrase));
    return { recipient };
  }
  if (type === "publicKeys") return recipient ? { recipient } : null;
  if (type === "decrypt") {
    if (!identity) throw new Error("the keys are not unlocked");
    try {
      return await decrypt(bytes, { identities: [identity] });
    } catch (err) {
      throw err.name === "AgeRuleError" ? err : new Error("the file does not open with your key");
    }
  }
  throw new Error("unknown request");
}

self.addEventListener("message", async ({ data }) => {
  try {
    const result = await answer(data);
    self.postMessage({ id: data.id, result }, result instanceof Uint8Array ? [result.buffer] : []);
  } catch (err) {
    self.postMessage({ id: data.id, error: err.message || "the keyring failed" });
  }
});
