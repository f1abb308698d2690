// The link page (GET /l/{token}): verifies, claims and decrypts in the page.
//
// Opening the page spends nothing: it reads the link's summary (manifest and
// meta ciphertext). Only the person's click claims the link (one use) and
// downloads the ciphertext. A link-key link carries its age identity after
// '#': browsers never send a fragment, and this code sends it nowhere; keys,
// passphrases and plaintext stay in this page's memory. A sign-in link's page
// is served with this script only to a signed-in visitor: it then reads and
// claims with the session (cookie and CSRF header), which the gateway checks is
// the link's recipient; a bearer link sends no credentials at all.
import { identityToRecipient } from "age-encryption";
import { decrypt } from "./lib/age.js";
import { fromBase64, fromUtf8, sha256Hex } from "./lib/bytes.js";
import { openKeyFile } from "./lib/keyfile.js";
import { PASSPHRASE_RECIPIENT, checkManifest, openedBy } from "./lib/manifest.js";
import { alertBox, el, field, save, sentence, show, sizeText } from "./lib/ui.js";

// The page holds the whole ciphertext and plaintext in memory; larger files are for the CLI.
const MAX_IN_PAGE_BYTES = 256 * 1024 * 1024;
const CLI_HINT = "carebridge fetch --link 'LINK'";
const NO_STORE = { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };

const root = document.getElementById("app");
const token = location.pathname.split("/").pop();
const signInLink = root.querySelector("[data-sign-in-link]") !== null;
// A bearer link works for whoever holds it: it sends no cookie (an ended session must not refuse it).
const CREDENTIALS = signInLink ? { credentials: "same-origin" } : {};
const CLAIM_HEADERS = signInLink ? { "X-Carebridge-CSRF": "1" } : {};

class Stop extends Error {} // a message for the person, already in words

async function problem(response, fallback) {
  try {
    const body = await response.json();
    return new Stop(body.detail ? sentence(body.detail) : fallback);
  } catch {
    return new Stop(fallback);
  }
}

async function summary() {
  const response = await fetch(`/l/${token}`, { ...NO_STORE, ...CREDENTIALS, headers: { Accept: "application/json" } });
  if (!response.ok) throw await problem(response, "This link cannot be used.");
  return response.json();
}

/** Check the manifest for *opener*, then open the meta (file name, size, hash). */
async function unlock(info, opener) {
  const manifest = await checkManifest(info, opener.recipient);
  let meta;
  try {
    meta = JSON.parse(fromUtf8(await decrypt(fromBase64(info.meta), opener.keys)));
  } catch (err) {
    throw new Stop(err.name === "AgeRuleError" ? err.message : "The document does not open with this key or passphrase.");
  }
  return { manifest, meta };
}

function safeName(name) {
  const plain = String(name).split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f]/g, "").trim();
  return plain && plain !== "." && plain !== ".." ? plain : "document";
}

async function claimAndSave(opener, manifest, meta) {
  const response = await fetch(`/l/${token}/claim`, { ...NO_STORE, ...CREDENTIALS, method: "POST",
    headers: CLAIM_HEADERS });
  if (!response.ok) throw await problem(response, "The download was refused.");
  const sealed = new Uint8Array(await response.arrayBuffer());
  if ((await sha256Hex(sealed)) !== manifest.content.sha256) {
    throw new Stop("The file the gateway sent does not match the sender's manifest.");
  }
  const plain = await decrypt(sealed, opener.keys);
  if ((await sha256Hex(plain)) !== meta.sha256) throw new Stop("The decrypted file does not match its metadata.");
  const name = safeName(meta.name);
  save(plain, name, meta.content_type);
  show(root, "Document saved", el("p", { text: `Saved ${name} (${sizeText(plain.length)}) to your downloads.` }),
    el("p", { text: "It was decrypted in this page; the gateway never saw it unencrypted." }));
}

function offer(info, opener, manifest, meta) {
  const status = el("p", { role: "status" });
  const button = el("button", { type: "button", text: `Download and decrypt ${safeName(meta.name)}` });
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Downloading and decrypting…";
    try {
      await claimAndSave(opener, manifest, meta);
    } catch (err) {
      button.disabled = false;
      status.replaceWith(alertBox(err instanceof Stop ? err.message : "The document could not be decrypted."));
    }
  });
  const note = meta.note ? el("p", {}, el("strong", { text: "Note from the sender: " }), meta.note) : null;
  show(root, "A document is ready", el("p", {}, el("strong", { text: "File: " }), safeName(meta.name),
    ` (${sizeText(meta.size)})`), note,
    el("p", { text: `The sender's signature checks out. ${info.uses_left} download(s) left on this link; downloading uses one.` }),
    button, status);
}

function askPassphrase(info) {
  const input = el("input", { type: "password", autocomplete: "off", required: "" });
  const status = el("p", { role: "status" });
  const form = el("form", {}, field("passphrase", "Document passphrase", input),
    el("button", { type: "submit", text: "Open the document" }), status);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    status.textContent = "Checking the passphrase (this takes a few seconds)…";
    const opener = { recipient: PASSPHRASE_RECIPIENT, keys: { passphrase: input.value } };
    attempt(info, opener, status);
  });
  show(root, "Enter the document's passphrase",
    el("p", { text: "The sender gave you a passphrase for this document, apart from the link." }), form);
  input.focus();
}

function askKeyFile(info) {
  const file = el("input", { type: "file", required: "" });
  const input = el("input", { type: "password", autocomplete: "off", required: "" });
  const status = el("p", { role: "status" });
  const form = el("form", {}, field("keyfile", "Your carebridge key file", file),
    field("keypass", "Key file passphrase", input), el("button", { type: "submit", text: "Unlock" }), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Unlocking your key file (this takes a few seconds)…";
    try {
      const { identity, recipient } = await openKeyFile(new Uint8Array(await file.files[0].arrayBuffer()), input.value);
      await attempt(info, { recipient, keys: { identities: [identity] } }, status);
    } catch (err) {
      status.replaceChildren(alertBox(err.message));
    }
  });
  show(root, "Open with your key file",
    el("p", { text: "This link carries no key. Choose your key file; it is opened in this page and never uploaded." }),
    form);
}

async function attempt(info, opener, status) {
  try {
    const { manifest, meta } = await unlock(info, opener);
    offer(info, opener, manifest, meta);
  } catch (err) {
    status.replaceChildren(alertBox(err instanceof Stop || err.name === "ManifestError" ? sentence(err.message)
      : "The document could not be opened."));
  }
}

async function start() {
  const fragment = location.hash.slice(1);
  if (fragment && !fragment.startsWith("AGE-SECRET-KEY-")) {
    throw new Stop("The part of the link after # is not a key. Was the link cut short?");
  }
  const info = await summary();
  if (info.content_size > MAX_IN_PAGE_BYTES) {
    show(root, "This document is too large for the browser", el("p", {}, "Open it with ", el("code", { text: CLI_HINT }), "."));
  } else if (fragment) {
    const opener = { recipient: await identityToRecipient(fragment), keys: { identities: [fragment] } };
    const { manifest, meta } = await unlock(info, opener);
    offer(info, opener, manifest, meta);
  } else if (openedBy(info) === "passphrase") {
    askPassphrase(info);
  } else {
    askKeyFile(info);
  }
}

start().catch((err) => {
  const text = err instanceof Stop || err.name === "ManifestError" ? sentence(err.message)
    : "This document cannot be opened here.";
  show(root, "This link cannot be used", alertBox(text));
});
