// The sender's outbox (GET /outbox): each document sent, its recipients
// (downloaded or not, and when; revoked), its links and their uses; and the
// sender's actions, each confirmed in the page and answered in words: revoke
// for all or for one recipient, change the expiry (within the server's
// ceiling), issue and revoke links. An admin (who has no outbox) gets the
// legal hold control instead: only an admin can release a hold.
//
// A link-key link's key (an age identity) stays in this page: the server
// issues a bearer link and the page appends the key after '#', which browsers
// never send. File names are in the encrypted meta: the page shows ids, sizes,
// dates and cases, and the names once the sender opens their key file here
// (the key is opened in this page, used and dropped; nothing of it or of a name is sent).
import { identityToRecipient } from "age-encryption";
import { decrypt } from "./lib/age.js";
import { fromBase64, fromUtf8 } from "./lib/bytes.js";
import { openKeyFile } from "./lib/keyfile.js";
import { checkManifest } from "./lib/manifest.js";
import { api, requireSession } from "./lib/session.js";
import { qrCode } from "./lib/qr.js";
import { refusalText } from "./lib/words.js";
import { alertBox, el, field, show, sizeText } from "./lib/ui.js";

const root = document.getElementById("app");
const PAGE_SIZE = 20;
const KINDS = { sign_in: "Sign-in link", bearer: "Bearer link", link_key: "Link-key link" };

/** "2026-12-06 19:40 UTC": the API's times as they are, readable and unambiguous. */
function when(iso) {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : "never";
}

function said(text, tone = "status") {
  return tone === "error" ? alertBox(text) : el("p", { role: "status", class: "done", text });
}

/** A refusal the page itself makes, already in words. */
class Stop extends Error {}

// What the last action on a document said, and the link it issued: kept across a refresh of the list.
const notes = new Map();
const issued = new Map();
const names = new Map(); // document id -> file name, opened with the sender's key

/**
 * A button that asks first: a click shows *question* with a confirming button
 * (*yes*) and Cancel. The confirmed *run* returns what happened, in words;
 * that (or the refusal) is kept as *at.doc*'s note, shown once *at.refresh* has redrawn.
 */
function confirmed(label, question, yes, run, at, attrs = {}) {
  const ask = el("button", { type: "button", class: "secondary", text: label, ...attrs });
  const box = el("span", { class: "confirm" });
  ask.addEventListener("click", () => {
    ask.hidden = true;
    const go = el("button", { type: "button", text: yes });
    const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const done = () => { box.replaceChildren(); ask.hidden = false; };
    cancel.addEventListener("click", done);
    go.addEventListener("click", async () => {
      go.disabled = cancel.disabled = true;
      let note;
      try {
        note = said(await run());
      } catch (error) {
        note = said(error instanceof Stop ? error.message : refusalText(error), "error");
      }
      notes.set(at.doc, note);
      done();
      // The note is shown with the list as it now is (the redrawn card shows it), or here.
      if (at.refresh) await at.refresh().catch(() => at.status.replaceChildren(note));
      else at.status.replaceChildren(note);
    });
    box.replaceChildren(el("span", { class: "question", text: question }), go, cancel);
    go.focus();
  });
  return el("span", {}, ask, box);
}

function downloadText(person) {
  if (!person.downloaded) return "Not downloaded";
  const times = person.downloads === 1 ? "once" : `${person.downloads} times`;
  return `Downloaded ${times}, first ${when(person.first_downloaded_at)}`
    + (person.downloads > 1 ? `, last ${when(person.last_downloaded_at)}` : "");
}

function linkState(link, now) {
  if (link.revoked_at) return `revoked ${when(link.revoked_at)}`;
  if (new Date(link.expires_at) <= now) return "expired";
  return link.uses >= link.max_uses ? "used up" : "active";
}

function recipientsTable(doc, at) {
  const rows = doc.recipients.map((person) => el("tr", { "data-recipient": person.email },
    el("td", { text: `${person.email}${person.org_name ? ` (${person.org_name})` : ""}` }),
    el("td", { class: "downloaded", text: downloadText(person) }),
    el("td", { class: "access", text: person.revoked || doc.revoked ? "Revoked" : "Has access" }),
    el("td", {}, person.revoked || doc.revoked ? null : confirmed("Revoke", `Revoke ${person.email}'s access?`,
      `Yes, revoke ${person.email}`, async () => {
        await api(`/api/v1/documents/${encodeURIComponent(doc.id)}/policy`,
          { method: "POST", body: { revoke_recipient: person.id } });
        return `${person.email} can no longer download this document.`;
      }, at, { "aria-label": `Revoke ${person.email}` }))));
  return el("table", { class: "outbox-table" },
    el("caption", { text: "Recipients" }),
    el("thead", {}, el("tr", {}, ...["Recipient", "Downloaded", "Access", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows));
}

function linksTable(doc, at) {
  if (!doc.links.length) return el("p", { class: "help", text: "No links issued." });
  const email = Object.fromEntries(doc.recipients.map((p) => [p.id, p.email]));
  const now = new Date();
  const rows = doc.links.map((link) => {
    const state = linkState(link, now);
    return el("tr", { "data-link": link.id },
      el("td", { text: email[link.recipient_id] || link.recipient_id }),
      el("td", { text: KINDS[link.mode] || link.mode }),
      el("td", { class: "link-uses", text: `${link.uses} of ${link.max_uses} used` }),
      el("td", { text: when(link.expires_at) }),
      el("td", { class: "link-state", text: state }),
      el("td", {}, state === "active" ? confirmed("Revoke link", "Revoke this link now?", "Yes, revoke the link",
        async () => {
          await api(`/api/v1/links/${encodeURIComponent(link.id)}/revoke`, { method: "POST" });
          issued.delete(doc.id);
          return "The link is revoked: it no longer opens.";
        }, at) : null));
  });
  return el("table", { class: "outbox-table" }, el("caption", { text: "Links" }),
    el("thead", {}, el("tr", {}, ...["For", "Kind", "Uses", "Until", "State", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows));
}

function expiryForm(doc, at) {
  const input = el("input", { type: "datetime-local", required: "", min: new Date().toISOString().slice(0, 16) });
  if (doc.latest_expiry) input.max = doc.latest_expiry.slice(0, 16);
  input.value = doc.expires_at.slice(0, 16);
  const ceiling = doc.latest_expiry ? `The server allows at most ${when(doc.latest_expiry)}.` : "";
  const change = confirmed("Change expiry", "Set the new expiry?", "Yes, change the expiry", async () => {
    if (!input.value) throw new Stop("Choose the new expiry first.");
    const answer = await api(`/api/v1/documents/${encodeURIComponent(doc.id)}/policy`,
      { method: "POST", body: { expires_at: `${input.value.slice(0, 16)}:00Z` } });
    return `The document now expires ${when(answer.expires_at)}.`;
  }, at);
  return el("div", { class: "expiry" }, field(`expiry-${doc.id}`, "New expiry (UTC)", input),
    el("p", { class: "help ceiling", text: ceiling }), change);
}

/** A bearer link with *key* after '#', once the key is shown to open this document for *person*. */
async function withKey(doc, person, issue, key) {
  const identity = key.trim();
  const refused = new Stop(`That key does not open this document for ${person.email}.`);
  if (!identity.startsWith("AGE-SECRET-KEY-1")) throw refused;
  let recipient, manifest;
  try {
    recipient = await identityToRecipient(identity);
  } catch {
    throw refused;
  }
  const info = await api(`/api/v1/documents/${encodeURIComponent(doc.id)}`);
  try {
    manifest = await checkManifest({ ...info, document_id: info.id }, recipient);
  } catch {
    throw refused;
  }
  if (!manifest.recipients.some((r) => r.user_id === person.id && r.age_recipient === recipient)) throw refused;
  const link = await issue("bearer");
  return { ...link, url: `${link.url}#${identity}` };
}

function linkResult(link, kind) {
  const url = el("input", { type: "text", readonly: "", value: link.url, class: "link-url" });
  const copied = el("span", { role: "status" });
  const copy = el("button", { type: "button", text: "Copy the link", onclick: async () => {
    try {
      await navigator.clipboard.writeText(link.url);
      copied.textContent = "Copied.";
    } catch {
      url.select();
      copied.textContent = "Select the link and copy it yourself.";
    }
  } });
  return el("div", { class: "issued" },
    el("p", { text: `${KINDS[kind]} issued: ${link.uses} use(s), until ${when(link.expires_at)}.` }),
    field(`link-${link.link_id}`, "The link", url), el("p", {}, copy, " ", copied),
    kind === "link_key" ? el("p", { class: "help", text: "Whoever has this link has the document: pass it to its "
      + "recipient privately. The key after # never reaches the gateway." }) : null,
    kind === "link_key" ? qrCode(link.url, "QR code of the link") : null);
}

function linkForm(doc, at) {
  const open = doc.recipients.filter((p) => !p.revoked);
  if (!open.length) return null;
  const who = el("select", {}, ...open.map((p) => el("option", { value: p.id, text: p.email })));
  const kind = el("select", {}, ...Object.entries(KINDS).map(([value, text]) => el("option", { value, text })));
  const key = el("input", { type: "password", autocomplete: "off", spellcheck: "false" });
  const keyField = field(`key-${doc.id}`, "The document's one-time key", key);
  const keyHelp = el("p", { class: "help", text: "For a document sent with carebridge send --link-key: the part "
    + "after # of a link it printed (AGE-SECRET-KEY-1…). It is checked in this page and never sent." });
  const showKey = () => { keyField.hidden = keyHelp.hidden = kind.value !== "link_key"; };
  kind.addEventListener("change", showKey);
  showKey();
  const issueButton = confirmed("Issue a link", "Issue this link?", "Yes, issue it", async () => {
    const person = open.find((p) => p.id === who.value);
    const issue = (mode) => api(`/api/v1/documents/${encodeURIComponent(doc.id)}/links`,
      { method: "POST", body: { recipient: person.id, mode } });
    try {
      const link = kind.value === "link_key" ? await withKey(doc, person, issue, key.value) : await issue(kind.value);
      issued.set(doc.id, linkResult(link, kind.value));
    } finally {
      key.value = "";
    }
    return `A ${KINDS[kind.value].toLowerCase()} for ${person.email} is issued.`;
  }, at);
  return el("fieldset", { class: "link-form" }, el("legend", { text: "Issue a link" }),
    field(`to-${doc.id}`, "Link for", who), field(`kind-${doc.id}`, "Kind of link", kind), keyField, keyHelp, issueButton);
}

function card(doc, refresh) {
  const status = el("div", { class: "result", "aria-live": "polite" }, notes.get(doc.id));
  const at = { doc: doc.id, status, refresh };
  const facts = el("dl", {},
    names.has(doc.id) ? el("dt", { text: "File" }) : null,
    names.has(doc.id) ? el("dd", { class: "file-name", text: names.get(doc.id) }) : null,
    el("dt", { text: "Sent" }), el("dd", { text: when(doc.created_at) }),
    el("dt", { text: "Size" }), el("dd", { text: sizeText(doc.size) }),
    el("dt", { text: "Case" }), el("dd", { text: doc.case_id || "none" }),
    el("dt", { text: "Status" }), el("dd", { class: "doc-status", text: doc.status.replaceAll("_", " ") }),
    el("dt", { text: "Expires" }), el("dd", { class: "doc-expiry", text: when(doc.expires_at) }),
    el("dt", { text: "Legal hold" }), el("dd", { text: doc.legal_hold ? "on" : "off" }));
  const live = !doc.revoked && doc.status !== "purged" && doc.status !== "expired";
  const revokeAll = live ? confirmed("Revoke for everyone", "Revoke every recipient's access now? This cannot "
    + "be undone.", "Yes, revoke for everyone", async () => {
    await api(`/api/v1/documents/${encodeURIComponent(doc.id)}/revoke`, { method: "POST" });
    return "The document is revoked: nobody can download it any more.";
  }, at) : null;
  return el("article", { class: "sent", "data-document": doc.id },
    el("h2", {}, "Document ", el("code", { text: doc.id })), facts, status,
    recipientsTable(doc, at), linksTable(doc, at), issued.get(doc.id),
    live ? expiryForm(doc, at) : null, live ? linkForm(doc, at) : null, revokeAll ? el("p", {}, revokeAll) : null);
}

async function outbox() {
  const list = el("div", { class: "outbox" });
  const more = el("p", {});
  let shown = [];
  const query = (limit, cursor) => api(`/api/v1/outbox?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  // After an action: the listing again, as far as it was shown (notes and issued links kept by id).
  const refresh = async () => {
    shown = (await query(Math.max(PAGE_SIZE, shown.length))).documents;
    list.replaceChildren(...shown.map((doc) => card(doc, refresh)));
  };
  const page = async (cursor) => {
    const answer = await query(PAGE_SIZE, cursor);
    shown = shown.concat(answer.documents);
    list.append(...answer.documents.map((doc) => card(doc, refresh)));
    more.replaceChildren(answer.next_cursor ? el("button", { type: "button", class: "secondary",
      text: "Show older documents", onclick: () => page(answer.next_cursor) }) : "");
    if (!shown.length) list.replaceChildren(el("p", { text: "You have not sent any documents yet." }));
  };
  show(root, "Your outbox", el("p", { text: "What you sent, who downloaded it, and the links you issued. "
    + "File names are encrypted: documents are named by their id." }), namesForm(() => shown, refresh), list, more);
  await page(null);
}

/** Open each listed document's meta with the sender's key file (unlocked here for this once, never kept). */
function namesForm(listed, refresh) {
  const file = el("input", { type: "file", required: "" });
  const passphrase = el("input", { type: "password", autocomplete: "off", required: "" });
  const status = el("p", { role: "status" });
  const form = el("form", {}, field("names-key", "Your carebridge key file", file),
    field("names-pass", "Key file passphrase", passphrase), el("button", { type: "submit", text: "Show file names" }),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Unlocking your key file (this takes a few seconds)…";
    let identity;
    try {
      identity = (await openKeyFile(new Uint8Array(await file.files[0].arrayBuffer()), passphrase.value)).identity;
    } catch (error) {
      status.replaceChildren(alertBox(error.message || "The key file did not open."));
      return;
    } finally {
      passphrase.value = "";
    }
    for (const doc of listed().filter((d) => d.meta && !names.has(d.id))) {
      try {
        names.set(doc.id, JSON.parse(fromUtf8(await decrypt(fromBase64(doc.meta), { identities: [identity] }))).name);
      } catch { /* not sent to this key (a passphrase document): its id stays its name */ }
    }
    status.textContent = `File names shown for ${names.size} document${names.size === 1 ? "" : "s"}.`;
    await refresh();
  });
  return el("details", { class: "names" }, el("summary", { text: "Show file names (with your key file)" }), form);
}

function legalHold() {
  const id = el("input", { type: "text", required: "", autocomplete: "off", spellcheck: "false" });
  const status = el("div", { "aria-live": "polite" });
  const set = (on) => confirmed(on ? "Place a legal hold" : "Release the legal hold",
    on ? "Hold this document? It will not be purged until released." : "Release the hold? Its retention applies again.",
    on ? "Yes, hold it" : "Yes, release it", async () => {
      const docId = id.value.trim();
      if (!docId) throw new Stop("Enter the document's id first.");
      const answer = await api(`/api/v1/documents/${encodeURIComponent(docId)}/policy`,
        { method: "POST", body: { legal_hold: on } });
      return answer.legal_hold ? `Document ${docId} is on legal hold.` : `Document ${docId} is no longer on legal hold.`;
    }, { doc: "legal-hold", status });
  show(root, "Legal hold", el("p", { text: "As an admin you can hold a document (it is then never purged) or "
    + "release a hold. Only admins can release one." }),
  el("fieldset", { class: "legal-hold" }, el("legend", { text: "Legal hold" }), field("hold-id", "Document id", id),
    el("p", {}, set(true), " ", set(false))), status);
}

async function start() {
  const me = await requireSession();
  if (me.role === "admin") return legalHold();
  if (me.role !== "uploader") {
    return show(root, "Your outbox", el("p", { text: "Only people who send documents have an outbox." }));
  }
  return outbox();
}

start().catch((error) => show(root, "Your outbox", alertBox(refusalText(error))));
