// The key setup page (GET /keys/new): makes a key file in the browser, as
// `carebridge keygen [--pq]` does, in the keyring Worker. Signed in, the page
// then does what the CLI's `keys register` and `keys push` do: the keys are
// registered through the log (a registration signed in the Worker) and the
// sealed key file is stored on the gateway, so a person needs no CLI at all.
// Not signed in, the file is saved as a download, to register with the CLI.
// The passphrase and the secrets never leave the page; the Worker is locked at the end.
import { accept, auditInPage } from "./lib/keyaudit.js";
import * as keyring from "./lib/keyring.js";
import { recipientFingerprint, signingKeyFingerprint } from "./lib/fingerprint.js";
import { registerKeys } from "./lib/registration.js";
import { api, currentPerson, signInUrl } from "./lib/session.js";
import { alertBox, el, field, save, show } from "./lib/ui.js";
import { refusalText } from "./lib/words.js";
import { fromBase64 } from "./lib/bytes.js";

// The key file can be attacked offline by whoever copies it: a short passphrase falls fast.
const MIN_PASSPHRASE_LENGTH = 12;
const KEY_FILE_NAME = "carebridge.key";

const root = document.getElementById("app");


function ask(me) {
  // Length is checked below, with a message read out to screen readers (not the browser's bubble).
  const first = el("input", { type: "password", autocomplete: "new-password", required: "" });
  const second = el("input", { type: "password", autocomplete: "new-password", required: "" });
  const hybrid = el("input", { type: "checkbox", id: "post-quantum" });
  const replace = me?.keys ? el("input", { type: "checkbox", id: "replace" }) : null;
  const status = el("div", { role: "status" });
  const form = el("form", {}, field("passphrase", "Passphrase for the new key file", first),
    field("confirm", "The same passphrase again", second),
    el("p", { class: "check" }, hybrid, el("label", { for: "post-quantum",
      text: "Post-quantum keys (ML-KEM-768 + X25519; senders need carebridge or age 1.3 or later)" })),
    replace ? el("p", { class: "check" }, replace, el("label", { for: "replace",
      text: "Replace my current keys (documents already sent to them still need the old key file)" })) : null,
    el("button", { type: "submit", text: "Make my key file" }), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (first.value.length < MIN_PASSPHRASE_LENGTH) {
      status.replaceChildren(alertBox(`Use at least ${MIN_PASSPHRASE_LENGTH} characters.`));
    } else if (first.value !== second.value) {
      status.replaceChildren(alertBox("The two passphrases differ."));
    } else if (replace && !replace.checked) {
      status.replaceChildren(alertBox("You have keys already: tick the box to replace them."));
    } else {
      status.replaceChildren(el("p", { text: "Making your keys (this takes a few seconds)…" }));
      let made;
      try {
        const release = document.querySelector('meta[name="carebridge-release"]')?.content ?? "";
        made = await keyring.create({ passphrase: first.value, release, postQuantum: hybrid.checked });
      } catch {
        keyring.lock();
        status.replaceChildren(alertBox("The key file could not be made in this browser."));
        return;
      }
      first.value = second.value = "";
      await (me ? publish(me, made, Boolean(replace), status) : saved(made));
    }
  });
  const intro = me
    ? "Your keys are made in this page. Their public half is registered for you; the file, sealed by your "
      + "passphrase, is stored on the gateway so that your other browsers and the carebridge CLI can open it."
    : "Your keys are made in this page and saved as a file protected by your passphrase. "
      + "They never leave your device: keep the file, and remember the passphrase.";
  show(root, "Make your key file", el("p", { text: intro }), form,
    me ? null : el("p", {}, el("a", { href: signInUrl(), text: "Sign in" }),
      " first to register the keys and store the file without the CLI."));
}

/**
 * Store the sealed file, then register the keys through the log (as `keys push` and `keys register`).
 * The file goes first, under its condition: keys are never published whose file could not be kept.
 */
async function publish(me, made, replacing, status) {
  status.replaceChildren(el("p", { text: "Storing your key file…" }));
  let stored = false, record;
  try {
    // A first key file only where none is stored: another browser's keys are never replaced unasked.
    const condition = replacing ? {} : { "If-None-Match": "*" };
    await api(keyring.KEY_FILE_PATH, { method: "PUT", body: new TextEncoder().encode(made.sealed),
      headers: { "Content-Type": "application/octet-stream", ...condition } });
    stored = true;
    status.replaceChildren(el("p", { text: "Registering your keys…" }));
    record = await registerKeys({ userId: me.id, recipient: made.recipient, signingKey: made.signingKey });
  } catch (error) {
    keyring.lock();
    status.replaceChildren(alertBox(stored
      ? `Your key file is stored, but the keys were not registered: ${refusalText(error)} `
        + "Register them with carebridge keys pull, then carebridge keys register."
      : `Nothing was stored or registered: ${refusalText(error)}`),
    el("button", { type: "button", text: "Save the key file instead",
      onclick: () => save(new TextEncoder().encode(made.sealed), KEY_FILE_NAME, "application/octet-stream") }));
    return;
  }
  keyring.lock();
  accept(me.id, record.log_seq); // made here, as `keys register` remembers its keys for `keys audit`
  auditInPage(me, { recipient: made.recipient, signingKey: made.signingKey });
  await done("Your keys are ready", made, [
    el("p", { id: "registered", "data-signer": made.signer, text: `Registered on the access log (entry ${record.log_seq}),`
      + " and your key file is stored on the gateway, sealed by your passphrase. On another computer: "
      + "sign in there, or run carebridge keys pull." }),
    el("button", { type: "button", text: "Save a copy of the key file",
      onclick: () => save(new TextEncoder().encode(made.sealed), KEY_FILE_NAME, "application/octet-stream") }),
  ]);
}

async function saved(made) {
  keyring.lock();
  save(new TextEncoder().encode(made.sealed), KEY_FILE_NAME, "application/octet-stream");
  await done("Your key file is saved", made, [
    el("p", { text: `Saved ${KEY_FILE_NAME} to your downloads. Publish its public keys with: ` },
      el("code", { text: `CAREBRIDGE_IDENTITY=${KEY_FILE_NAME} carebridge keys register` })),
  ]);
}

async function done(heading, made, lead) {
  const row = (label, value, id) => el("p", {}, el("strong", { text: label }), el("br"),
    el("code", { id, text: value }));
  const publicKey = fromBase64(made.signingKey.slice("ed25519:".length));
  show(root, heading, ...lead,
    row("Public key", made.recipient, "recipient"),
    row("Fingerprint", await recipientFingerprint(made.recipient), "recipient-fingerprint"),
    row("Signing key", made.signingKey, "signing-key"),
    row("Fingerprint", await signingKeyFingerprint(publicKey), "signing-key-fingerprint"));
}

currentPerson().then(ask, () => show(root, "Make your key file", alertBox(refusalText(null))));
