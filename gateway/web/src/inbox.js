// The spa's inbox (GET /inbox): the documents sent to me, their file names and
// notes decrypted in this page; opening one checks the sender's manifest
// signature and that the sender's key is in the log (the inclusion proof and the
// checkpoint's signature verified here, under the log key shown to the person),
// then downloads, decrypts and saves it with its real name.
//
// The key file is unlocked once, in the keyring Worker (lib/keyring.js): the passphrase
// goes there and nowhere else; the page only asks it to decrypt.
import { fromBase64, fromUtf8, sha256Hex } from "./lib/bytes.js";
import { signingKeyFingerprint } from "./lib/fingerprint.js";
import { KeyFileError } from "./lib/keyfile.js";
import { auditInPage } from "./lib/keyaudit.js";
import * as keyring from "./lib/keyring.js";
import { KeyringError } from "./lib/keyring.js";
import { ManifestError, checkManifest } from "./lib/manifest.js";
import { ApiError, api, requireSession } from "./lib/session.js";
import { askToUnlock, safeName } from "./lib/unlock.js";
import { LogError, checkPublished, parseVerifierKey } from "./lib/tlog.js";
import { alertBox, el, field, save, sentence, show, sizeText } from "./lib/ui.js";

const MAX_IN_PAGE_BYTES = 256 * 1024 * 1024; // the page holds ciphertext and plaintext in memory; larger: the CLI
const PAGE_SIZE = 100; // documents a listing call asks for
const MAX_LISTED = 1000; // documents this page lists at most; the CLI lists them all
const PROBLEM = "urn:carebridge:problem:";

// What a refusal of a document means, by its problem type (gateway/server/vocabulary.py Why).
const MEANINGS = {
  "document-expired": "The document has expired: its sender allowed downloads only until a set time.",
  "document-revoked": "The sender revoked the document: nobody can download it any more.",
  "document-recipient-revoked": "The sender took back your access to this document.",
  "document-purged": "The document is no longer stored on the gateway.",
  "download-limit": "You have used every download the sender allowed you for this document.",
  "total-download-limit": "The document has been downloaded as many times as the sender allowed in all.",
  "not-yet-valid": "The sender made the document available only from a later time.",
  "network-forbidden": "The sender allows downloads only from certain networks, and this connection is not from one of them.",
  "purpose-required": "The sender requires a purpose of use for each download: fetch it with the CLI and --purpose.",
  "purpose-forbidden": "The sender does not allow this purpose of use.",
  "not-found": "The gateway has no such document for you.",
  "unauthorized": "Your session has ended: sign in again.",
  "rate-limited": "Too many requests: wait a little and try again.",
};
const ENDED = new Set(["revoked", "revoked_for_me", "purged"]); // the gateway lists no meta for these
const STATUS = { expired: "expired", revoked: "revoked", revoked_for_me: "revoked", used_up: "no downloads left",
  not_yet_valid: "not yet available", purged: "removed" };

const root = document.getElementById("app");

class Stop extends Error {} // a message for the person, already in words

/** A refusal in words: the meaning of its problem type, and what the gateway said. */
function refusal(error) {
  if (!(error instanceof ApiError)) {
    const ours = [Stop, ManifestError, LogError, KeyringError, KeyFileError].some((kind) => error instanceof kind);
    return ours ? sentence(error.message) : "Something failed in this page; reload it and try again.";
  }
  const slug = error.type.startsWith(PROBLEM) ? error.type.slice(PROBLEM.length) : "";
  const meaning = MEANINGS[slug] || `${error.title || "The request was refused"}.`;
  return error.detail ? `${meaning} (The gateway says: ${error.detail}.)` : meaning;
}

function refusalBox(error) {
  const box = alertBox(refusal(error));
  if (error instanceof ApiError) box.dataset.problem = error.type;
  return box;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "never");


/** The log's key, fetched once: the pin every proof is checked under, shown with its fingerprint. */
async function logKey() {
  const served = await api("/api/v1/audit/verifier");
  const verifier = await parseVerifierKey(served.verifier_key);
  return { ...verifier, origin: served.origin, fingerprint: await signingKeyFingerprint(verifier.publicKey) };
}

function unlock(ctx, stored) {
  const why = stored
    ? "Your key file is kept on this gateway, encrypted with your passphrase. It is unlocked in this page; the passphrase never leaves it."
    : "Choose your key file (from carebridge keygen or the key setup page). It is opened in this page and never uploaded.";
  return askToUnlock({ stored, refusalBox,
    place: (form) => show(root, "Unlock your inbox", el("p", { text: why }), logLine(ctx), form) });
}

function logLine(ctx) {
  return el("p", { class: "log-key" }, "Documents are checked against the access log of ",
    el("code", { text: ctx.log.origin }), ", whose key has the fingerprint ",
    el("code", { class: "fingerprint", text: ctx.log.fingerprint }), ".");
}

async function listInbox() {
  const documents = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...(cursor ? { cursor } : {}) });
    const page = await api(`/api/v1/inbox?${query}`);
    documents.push(...page.documents);
    cursor = page.next_cursor;
  } while (cursor && documents.length < MAX_LISTED);
  return documents;
}

/** The document's meta (name, note, size, type, hash), decrypted in the Worker; null if it does not open. */
async function openMeta(ctx, encrypted) {
  if (!encrypted) return null;
  try {
    return JSON.parse(fromUtf8(await ctx.keys.decrypt(fromBase64(encrypted))));
  } catch {
    return null; // not encrypted to this key (a link-key or passphrase document)
  }
}

const statusOf = (doc) => STATUS[doc.status] ?? (doc.downloads > 0 ? "downloaded" : "new");

function cell(label, ...content) {
  return el("td", { "data-label": label }, ...content);
}

function row(ctx, doc, meta) {
  const ended = ENDED.has(doc.status);
  const name = meta ? safeName(meta.name) : ended ? "(name withheld: access has ended)" : "(name not readable with your key)";
  const open = el("button", { type: "button", class: "link", text: name, "aria-label": `Open ${name}`,
    onclick: () => openDocument(ctx, doc, meta) });
  const sender = doc.sender ? `${doc.sender.email}` : doc.sender_id;
  const status = statusOf(doc);
  return el("tr", { "data-document": doc.id, class: `status-${status.replace(/ /g, "-")}` },
    el("th", { scope: "row", "data-label": "File" }, open),
    cell("From", sender, doc.sender?.org_name ? el("span", { class: "org", text: doc.sender.org_name }) : null),
    cell("Note", meta?.note || "—"),
    cell("Expires", el("time", { datetime: doc.expires_at ?? "", text: when(doc.expires_at) })),
    cell("Downloads left", ended ? "—" : doc.downloads_left === null || doc.downloads_left === undefined
      ? "no limit" : String(doc.downloads_left)),
    cell("Status", el("span", { class: "status", text: status })),
    cell("Case", doc.case_id || "—"));
}

async function showInbox(ctx, notice = null) {
  show(root, "Your inbox", el("p", { role: "status", text: "Loading your documents…" }));
  let documents;
  try {
    documents = await listInbox();
  } catch (error) {
    show(root, "Your inbox", refusalBox(error));
    return;
  }
  const rows = [];
  for (const doc of documents) rows.push(row(ctx, doc, await openMeta(ctx, doc.meta)));
  const head = el("tr", {}, ...["File", "From", "Note", "Expires", "Downloads left", "Status", "Case"]
    .map((text) => el("th", { scope: "col", text })));
  const table = rows.length
    ? el("table", { class: "inbox" }, el("caption", { text: `${rows.length} document${rows.length === 1 ? "" : "s"} sent to you` }),
      el("thead", {}, head), el("tbody", {}, ...rows))
    : el("p", { text: "No documents have been sent to you." });
  show(root, "Your inbox", notice, table, logLine(ctx));
}

/** The manifest checked, and the sender's signing key shown to be published in the log. */
async function verify(ctx, info) {
  const manifest = await checkManifest({ ...info, document_id: info.id }, ctx.recipient);
  const claimed = manifest.sender?.signing_key;
  if (manifest.sender?.user_id !== info.sender_id) throw new Stop("the manifest names another sender than the gateway does");
  const history = await api(`/api/v1/users/${encodeURIComponent(info.sender_id)}/keys`);
  const key = history.keys.find((k) => k.verify_key === claimed);
  if (!key) throw new Stop("the manifest is signed by a key its sender never registered");
  let proof;
  try {
    const answer = await api(`/api/v1/audit/proof/inclusion?index=${encodeURIComponent(key.log_seq)}`,
      { headers: { Accept: "text/plain" } });
    proof = new Uint8Array(await answer.arrayBuffer());
  } catch (error) {
    if (error instanceof ApiError) throw new Stop(`the sender's key is not proven to be in the log yet (${error.detail || error.title})`);
    throw error;
  }
  let published;
  try {
    published = await checkPublished(key, info.sender_id, proof, ctx.log, ctx.log.origin);
  } catch (error) {
    if (error instanceof LogError) throw new Stop(`the sender's key is not proven to be in the access log: ${error.message}`);
    throw error;
  }
  const fingerprint = await signingKeyFingerprint(fromBase64(claimed.slice("ed25519:".length)));
  return { manifest, published, fingerprint };
}

async function download(ctx, id, manifest, meta) {
  const answer = await api(`/api/v1/documents/${encodeURIComponent(id)}/content`,
    { headers: { Accept: "application/octet-stream" } });
  const sealed = new Uint8Array(await answer.arrayBuffer());
  if (sealed.length !== manifest.content.size || (await sha256Hex(sealed)) !== manifest.content.sha256) {
    throw new Stop("the file the gateway sent does not match the sender's manifest");
  }
  const plain = await ctx.keys.decrypt(sealed);
  if ((await sha256Hex(plain)) !== meta.sha256) throw new Stop("the decrypted file does not match its metadata");
  const name = safeName(meta.name);
  save(plain, name, meta.content_type);
  return { name, size: plain.length };
}

async function openDocument(ctx, doc, listedMeta) {
  const back = el("button", { type: "button", class: "secondary", text: "Back to the inbox",
    onclick: () => showInbox(ctx) });
  const title = listedMeta ? safeName(listedMeta.name) : "A document";
  show(root, title, el("p", { role: "status", text: "Checking the sender's signature and key…" }), back);
  let info, checked, meta;
  try {
    info = await api(`/api/v1/documents/${encodeURIComponent(doc.id)}`);
    checked = await verify(ctx, info);
    meta = await openMeta(ctx, info.meta);
    if (!meta) throw new Stop("the document's details do not open with your key");
  } catch (error) {
    const unchecked = error instanceof Stop || error instanceof ManifestError;
    show(root, title, refusalBox(error),
      unchecked ? el("p", { text: "Nothing was downloaded. Tell the sender, by another way than this gateway." }) : null,
      back);
    return;
  }
  const { manifest, published, fingerprint } = checked;
  const status = el("div", { role: "status", "aria-live": "polite" });
  const button = el("button", { type: "button", text: `Download and decrypt ${safeName(meta.name)}` });
  const tooLarge = manifest.content.size > MAX_IN_PAGE_BYTES;
  button.disabled = tooLarge;
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.replaceChildren(el("p", { text: "Downloading and decrypting…" }));
    try {
      const saved = await download(ctx, doc.id, manifest, meta);
      status.replaceChildren(el("p", { class: "saved", text: `Saved ${saved.name} (${sizeText(saved.size)}) to your downloads. It was decrypted in this page; the gateway never saw it unencrypted.` }));
    } catch (error) {
      button.disabled = false;
      status.replaceChildren(refusalBox(error));
    }
  });
  const sender = info.sender_id === doc.sender?.id && doc.sender
    ? `${doc.sender.email}${doc.sender.org_name ? `, ${doc.sender.org_name}` : ""}` : info.sender_id;
  const facts = el("dl", { class: "facts" },
    el("dt", { text: "From" }), el("dd", { text: sender }),
    el("dt", { text: "File" }), el("dd", { text: `${safeName(meta.name)} (${sizeText(meta.size)})` }),
    meta.note ? el("dt", { text: "Note" }) : null, meta.note ? el("dd", { class: "note", text: meta.note }) : null,
    el("dt", { text: "Expires" }), el("dd", { text: when(info.expires_at) }),
    el("dt", { text: "Downloads left" }), el("dd", { text: info.max_downloads === null
      ? "no limit" : String(Math.max(0, info.max_downloads - info.downloads)) }),
    manifest.case_id ? el("dt", { text: "Case" }) : null, manifest.case_id ? el("dd", { text: manifest.case_id }) : null);
  const checks = el("ul", { class: "checks" },
    el("li", { text: "The sender's signature on the document's manifest checks out." }),
    el("li", {}, "The sender's signing key (fingerprint ", el("code", { text: fingerprint }),
      `) is in the access log: entry ${published.seq}, proven in the checkpoint of size ${published.size} signed by the log key.`));
  show(root, safeName(meta.name), facts, el("h2", { text: "Checked in this page" }), checks,
    tooLarge ? el("p", { text: "This document is too large for the browser: fetch it with the carebridge CLI." }) : null,
    el("div", { class: "document-actions" }, button, back), status);
}

async function start() {
  const me = await requireSession();
  const ctx = { keys: keyring, log: await logKey() };
  ctx.recipient = (await unlock(ctx, await keyring.storedKeyFileText())).recipient;
  auditInPage(me, await keyring.publicKeys()); // the keys the log holds for me, compared with these
  const registered = me?.keys?.age_recipient;
  const notice = registered && registered !== ctx.recipient
    ? alertBox("This key file is not the key registered for you: documents sent to your registered key will not open with it.")
    : null;
  await showInbox(ctx, notice);
}

start().catch((error) => show(root, "Your inbox", refusalBox(error)));
