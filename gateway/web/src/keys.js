// The key setup page (GET /keys/new): makes a key file in the browser, as
// `carebridge keygen` does, and hands it to the person as a download. The
// secrets are made here and never sent; the page shows the public keys and
// their fingerprints, to register with `carebridge keys register`.
import { makeKeyFile } from "./lib/keyfile.js";
import { recipientFingerprint, signingKeyFingerprint } from "./lib/fingerprint.js";
import { alertBox, el, field, save, show } from "./lib/ui.js";

// The key file can be attacked offline by whoever copies it: a short passphrase falls fast.
const MIN_PASSPHRASE_LENGTH = 12;
const KEY_FILE_NAME = "carebridge.key";

const root = document.getElementById("app");

function ask() {
  // Length is checked below, with a message read out to screen readers (not the browser's bubble).
  const first = el("input", { type: "password", autocomplete: "new-password", required: "" });
  const second = el("input", { type: "password", autocomplete: "new-password", required: "" });
  const status = el("div", { role: "status" });
  const form = el("form", {}, field("passphrase", "Passphrase for the new key file", first),
    field("confirm", "The same passphrase again", second),
    el("button", { type: "submit", text: "Make my key file" }), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (first.value.length < MIN_PASSPHRASE_LENGTH) {
      status.replaceChildren(alertBox(`Use at least ${MIN_PASSPHRASE_LENGTH} characters.`));
    } else if (first.value !== second.value) {
      status.replaceChildren(alertBox("The two passphrases differ."));
    } else {
      status.replaceChildren(el("p", { text: "Making your keys (this takes a few seconds)…" }));
      try {
        const release = document.querySelector('meta[name="carebridge-release"]')?.content ?? "";
        done(await makeKeyFile(first.value, { release }));
      } catch {
        status.replaceChildren(alertBox("The key file could not be made in this browser."));
      }
    }
  });
  show(root, "Make your key file",
    el("p", { text: "Your keys are made in this page and saved as a file protected by your passphrase. "
      + "They never leave your device: keep the file, and remember the passphrase." }), form);
}

async function done(made) {
  save(new TextEncoder().encode(made.sealed), KEY_FILE_NAME, "application/octet-stream");
  const row = (label, value, id) => el("p", {}, el("strong", { text: label }), el("br"),
    el("code", { id, text: value }));
  show(root, "Your key file is saved",
    el("p", { text: `Saved ${KEY_FILE_NAME} to your downloads. Publish its public keys with: ` },
      el("code", { text: `CAREBRIDGE_IDENTITY=${KEY_FILE_NAME} carebridge keys register` })),
    row("Public key", made.recipient, "recipient"),
    row("Fingerprint", await recipientFingerprint(made.recipient), "recipient-fingerprint"),
    row("Signing key", made.signingKey, "signing-key"),
    row("Fingerprint", await signingKeyFingerprint(made.publicKey), "signing-key-fingerprint"));
}

ask();
