// The form that unlocks a person's key file in the keyring Worker, for the pages that decrypt
// (the inbox, the case page): the gateway's stored copy (GET /api/v1/me/key-file) or a file
// chosen, and its passphrase. Neither leaves the page: the Worker opens the file and keeps the keys.
import { fromUtf8 } from "./bytes.js";
import { KeyFileError, MAX_KEY_FILE_SIZE } from "./keyfile.js";
import * as keyring from "./keyring.js";
import { alertBox, el, field } from "./ui.js";

/**
 * Resolves with the Worker's public keys ({recipient, signingKey}) once the key file opened and
 * *accept(keys)* did not throw (a page may refuse a key file that is not the registered one).
 * *stored*: the stored key file's text, or null (then a file is chosen); *place(form)* shows the
 * form on the page; *refusalBox(error)* is the page's refusal in words.
 */
export function askToUnlock({ stored, place, refusalBox, accept = () => {} }) {
  return new Promise((resolve) => {
    const file = stored ? null : el("input", { type: "file", required: "" });
    const passphrase = el("input", { type: "password", autocomplete: "off", required: "" });
    const status = el("div", { role: "status", "aria-live": "polite" });
    const button = el("button", { type: "submit", text: "Unlock" });
    const form = el("form", {}, file ? field("keyfile", "Your carebridge key file", file) : null,
      field("keypass", "Key file passphrase", passphrase), button, status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      status.replaceChildren(el("p", { text: "Unlocking your key file (this takes a few seconds)…" }));
      try {
        const chosen = file?.files[0];
        if (chosen && chosen.size > MAX_KEY_FILE_SIZE) throw new KeyFileError("that file is too large to be a key file");
        const keyFileText = stored ?? fromUtf8(new Uint8Array(await chosen.arrayBuffer()));
        const keys = await keyring.unlock({ keyFileText, passphrase: passphrase.value });
        passphrase.value = "";
        accept(keys);
        resolve(keys);
      } catch (error) {
        button.disabled = false;
        status.replaceChildren(error?.name === "TypeError" ? alertBox("That file is not a key file.") : refusalBox(error));
      }
    });
    place(form);
    (file ?? passphrase).focus();
  });
}

/** A file name from a decrypted meta, safe to save under: its last path part, no control characters. */
export function safeName(name) {
  const plain = String(name ?? "").split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f]/g, "").trim();
  return plain && plain !== "." && plain !== ".." ? plain : "document";
}
