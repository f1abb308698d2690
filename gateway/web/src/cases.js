// Referral cases (GET /cases, one case at /cases#<id>), as `carebridge case …`
// does them (gateway/client/cases.py): the list with its filters; a case's header
// (client's name, contact, reason) decrypted in the keyring Worker once the opener's
// signed statement checks out with a key they registered; the clinic's follow-up
// date and close; the documents under the case, downloaded, acknowledged (a receipt
// signed in the Worker over the manifest verified here) and, for their sender, the
// receipts verified here with each recipient's key proven in the log; the notes,
// encrypted to the case's people and signed here, read and checked both ways.
// A clinic person opens a case here: the header encrypted to the spa people
// (their keys proven in the log first) and to herself, the statement signed.
// Requests carry ciphertext, signed statements and ids: never a name, a contact,
// a reason, a note's text, a file name, the passphrase or the key file.
import { fromBase64, fromUtf8, sha256Hex } from "./lib/bytes.js";
import { CaseFormatError, MAX_HEADER_FIELD, MAX_NOTE_CHARS, caseBody, headerJson, newCaseId, noteBody, noteJson,
  readHeader, readNoteText, readStatement, receiptBody, toSign, wire } from "./lib/caseformat.js";
import { KeyFileError } from "./lib/keyfile.js";
import { auditInPage } from "./lib/keyaudit.js";
import * as keyring from "./lib/keyring.js";
import { KeyringError } from "./lib/keyring.js";
import { ManifestError, checkManifest } from "./lib/manifest.js";
import { RecipientError, checkUserKeys, logKey, lookUp } from "./lib/recipients.js";
import { ApiError, api, requireSession } from "./lib/session.js";
import { askToUnlock, safeName } from "./lib/unlock.js";
import { LogError } from "./lib/tlog.js";
import { UploadError, encryptTo } from "./lib/upload.js";
import { alertBox, el, field, save, sentence, show, sizeText } from "./lib/ui.js";

const FILTERS = [["open", "Open", "state=open&state=delivered&state=acknowledged&state=follow_up_due"],
  ["overdue", "Overdue", "overdue=1"], ["week", "Due this week", "due_within=7"], ["closed", "Closed", "state=closed"],
  ["all", "All", ""]];
const STATE_WORDS = { open: "open", delivered: "delivered", acknowledged: "acknowledged",
  follow_up_due: "follow-up due", closed: "closed" };
const PAGE_SIZE = 50; // cases a listing call asks for
const MAX_LISTED = 500; // cases this page lists at most; the CLI pages through them all
const MAX_SPA_PEOPLE = 49; // crypto/case.py MAX_PEOPLE, less the opener
const MAX_ACK_DAYS = 365; // usecases/cases.py: ack_within is at most 365 days
const MAX_IN_PAGE_BYTES = 256 * 1024 * 1024; // inbox.js: larger documents are the CLI's

const root = document.getElementById("app");

class Stop extends Error {} // a message for the person, already in words

const OURS = [Stop, CaseFormatError, ManifestError, LogError, KeyringError, KeyFileError, RecipientError, UploadError];

function refusalBox(error) {
  let text;
  if (error instanceof ApiError) {
    text = `The gateway refused: ${error.title || `HTTP ${error.status}`}${error.detail ? ` (${error.detail})` : ""}.`;
  } else {
    text = OURS.some((kind) => error instanceof kind) ? sentence(error.message)
      : "Something failed in this page; reload it and try again.";
  }
  const box = alertBox(text);
  if (error instanceof ApiError) box.dataset.problem = error.type;
  return box;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "—");
const day = (iso) => (iso ? new Date(iso).toLocaleDateString([], { dateStyle: "medium" }) : "—");
const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
const path = (id) => `/api/v1/cases/${encodeURIComponent(id)}`;


/** Unlock the key file (the stored one, else one chosen) in the Worker; it must be the registered key. */
function unlock(ctx, stored) {
  return askToUnlock({ stored, refusalBox,
    place: (form) => show(root, "Unlock your cases", el("p", { text: "A case's client details and notes are encrypted "
      + "to its people: they are opened in this page with your key, which never leaves it." }), logLine(ctx), form),
    accept: (mine) => {
      if (mine.recipient !== ctx.me.keys.age_recipient || mine.signingKey !== ctx.me.keys.verify_key) {
        keyring.lock();
        throw new Stop("this key file is not your registered key: cases open only with it");
      }
    } });
}

function logLine(ctx) {
  return el("p", { class: "log-key" }, "Keys are checked against the access log of ", el("code", { text: ctx.log.origin }),
    ", whose key has the fingerprint ", el("code", { class: "fingerprint", text: ctx.log.fingerprint }), ".");
}

/** Why the case is overdue, in words (the gateway lists "follow_up" and "acknowledgement:<doc>"); null if not. */
function overdue(c) {
  if (!c.overdue.length) return null;
  const why = [...new Set(c.overdue.map((r) => (r === "follow_up" ? "follow-up date passed" : "acknowledgement due")))];
  return el("strong", { class: "overdue", text: ` — overdue: ${why.join(", ")}` });
}

const who = (ctx, id) => (id === ctx.me.id ? "you" : id);
const isClinic = (ctx, c) => c.clinic_org_id === ctx.me.org_id;

// ---- the list ----

async function listCases(query) {
  const cases = [];
  let cursor = null;
  do {
    const page = await api(`/api/v1/cases?${query}${query ? "&" : ""}limit=${PAGE_SIZE}`
      + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
    cases.push(...page.cases);
    cursor = page.next_cursor;
  } while (cursor && cases.length < MAX_LISTED);
  return cases;
}

function caseRow(ctx, c) {
  const mine = isClinic(ctx, c) ? "clinic" : "spa";
  return el("tr", { "data-case": c.id },
    el("th", { scope: "row", "data-label": "Case" }, el("a", { href: `#${c.id}`, text: c.ref })),
    el("td", { "data-label": "Parties" }, `${c.clinic_org_id} → ${c.spa_org_id}`,
      el("span", { class: "org", text: ` (you: the ${mine}; ${c.people.length} people)` })),
    el("td", { "data-label": "State" }, el("span", { class: "status", text: STATE_WORDS[c.state] ?? c.state }),
      overdue(c)),
    el("td", { "data-label": "Follow-up" }, day(c.follow_up_at)),
    el("td", { "data-label": "Documents" }, String(c.documents.length)),
    el("td", { "data-label": "Changed" }, when(c.updated_at)));
}

/** A view's number: a view still loading when a newer one started must not draw over it. */
const begin = (ctx) => ++ctx.views;
const current = (ctx, view) => view === ctx.views;

async function showList(ctx, filter = ctx.filter ?? "open") {
  const view = begin(ctx);
  ctx.filter = filter;
  const chosen = FILTERS.find(([key]) => key === filter) ?? FILTERS[0];
  const tabs = el("p", { class: "filters", role: "group", "aria-label": "Show" }, ...FILTERS.map(([key, label]) =>
    el("button", { type: "button", class: key === filter ? "" : "secondary", "aria-pressed": String(key === filter),
      text: label, onclick: () => showList(ctx, key) })));
  const opener = ctx.me.role === "uploader"
    ? el("p", {}, el("button", { type: "button", text: "Open a case", onclick: () => openForm(ctx) })) : null;
  show(root, "Referral cases", opener, tabs, el("p", { role: "status", text: "Loading your cases…" }));
  let cases;
  try {
    cases = await listCases(chosen[2]);
  } catch (error) {
    if (current(ctx, view)) show(root, "Referral cases", opener, tabs, refusalBox(error));
    return;
  }
  if (!current(ctx, view)) return;
  const head = el("tr", {}, ...["Case", "Parties", "State", "Follow-up", "Documents", "Changed"]
    .map((text) => el("th", { scope: "col", text })));
  const table = cases.length
    ? el("table", { class: "cases" }, el("caption", { text: `${cases.length} case${cases.length === 1 ? "" : "s"}: ${chosen[1].toLowerCase()}` }),
      el("thead", {}, head), el("tbody", {}, ...cases.map((c) => caseRow(ctx, c))))
    : el("p", { class: "empty", text: "No cases here." });
  show(root, "Referral cases", opener, tabs, table, logLine(ctx));
}

// ---- opening a case (clinic) ----

function openForm(ctx) {
  begin(ctx);
  const people = new Map();
  const entry = el("input", { type: "text", autocomplete: "off", placeholder: "name@spa.example or org:Spa name" });
  const list = el("ul", { class: "recipients" });
  const lookupStatus = el("div", { role: "status", "aria-live": "polite" });
  const add = el("button", { type: "button", class: "secondary", text: "Add spa person" });
  add.addEventListener("click", async () => {
    if (!entry.value.trim()) return;
    add.disabled = true;
    lookupStatus.replaceChildren(el("p", { text: "Looking up and checking the key against the access log…" }));
    try {
      const found = await lookUp(entry.value, ctx.log);
      if (people.size + found.users.length > MAX_SPA_PEOPLE) throw new Stop(`a case has at most ${MAX_SPA_PEOPLE} spa people`);
      for (const user of found.users) people.set(user.id, user);
      entry.value = "";
      lookupStatus.replaceChildren();
      list.replaceChildren(...[...people.values()].map((u) => el("li", { "data-user": u.id }, el("strong", { text: u.email }),
        ` — key checked: published in the access log, entry ${u.published.seq}`)));
    } catch (error) {
      lookupStatus.replaceChildren(refusalBox(error));
    } finally {
      add.disabled = false;
    }
  });
  const text = (rows) => el("textarea", { maxlength: String(MAX_HEADER_FIELD), rows: String(rows) });
  const clientName = el("input", { type: "text", maxlength: String(MAX_HEADER_FIELD), autocomplete: "off" });
  const contact = text(2), reason = text(3);
  const ack = el("input", { type: "number", min: "1", max: String(MAX_ACK_DAYS), step: "1", inputmode: "numeric" });
  const status = el("div", { "aria-live": "polite" });
  const button = el("button", { type: "submit", text: "Encrypt, sign and open the case" });
  const form = el("form", { class: "open-case" },
    el("fieldset", {}, el("legend", { text: "The spa's people" }),
      field("spa-person", "Spa person: an e-mail address, or org: and the spa's name for all its people", entry), add,
      lookupStatus, list),
    el("fieldset", {}, el("legend", { text: "Case header (encrypted to the case's people; the gateway never sees it)" }),
      field("client-name", "Client name", clientName), field("contact", "Contact details", contact),
      field("reason", "Reason for the referral", reason)),
    field("ack-within", "Acknowledgement due within, days (empty: no deadline)", ack),
    button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const id = await openCase(ctx, [...people.values()], { clientName: clientName.value, contact: contact.value,
        reason: reason.value }, ack.value.trim());
      clientName.value = contact.value = reason.value = "";
      window.location.hash = id;
      return;
    } catch (error) {
      status.replaceChildren(refusalBox(error));
    }
    button.disabled = false;
  });
  show(root, "Open a referral case", form,
    el("p", {}, el("button", { type: "button", class: "secondary", text: "Back to the cases", onclick: () => showList(ctx) })));
  entry.focus();
}

async function openCase(ctx, people, fields, ackDays) {
  if (!people.length) throw new Stop("add at least one of the spa's people");
  const spas = new Set(people.map((p) => p.org_id));
  if (spas.size !== 1) throw new Stop("a case is with one spa: name people of one organisation");
  let ackWithin = null;
  if (ackDays) {
    const n = Number(ackDays);
    if (!Number.isInteger(n) || n < 1 || n > MAX_ACK_DAYS) throw new Stop(`acknowledgement: 1 to ${MAX_ACK_DAYS} days`);
    ackWithin = n * 86400;
  }
  const caseId = newCaseId();
  const plain = headerJson({ caseId, ...fields });
  const header = await encryptTo(plain, [ctx.keys.recipient, ...people.map((p) => p.keys.age_recipient)]);
  const body = caseBody({ caseId, clinicOrg: ctx.me.org_id, spaOrg: [...spas][0],
    people: [ctx.me.id, ...people.map((p) => p.id)], headerSha256: await sha256Hex(header), userId: ctx.me.id,
    verifyKey: ctx.keys.signingKey });
  const statement = wire("case", body, await keyring.sign(toSign("case", body)));
  const answer = await api("/api/v1/cases", { method: "POST",
    body: { statement: b64(statement), header: b64(header), ...(ackWithin ? { ack_within: ackWithin } : {}) } });
  return answer.id;
}

// ---- one case ----

/** A signer's key must be one they registered (cases.py read_case); the history is fetched once a user. */
async function registered(ctx, userId, verifyKey) {
  if (!ctx.histories.has(userId)) {
    ctx.histories.set(userId, (await api(`/api/v1/users/${encodeURIComponent(userId)}/keys`)).keys);
  }
  return ctx.histories.get(userId).find((k) => k.verify_key === verifyKey) ?? null;
}

/** The case read and checked as `carebridge case show` does; the header's fields decrypted here. */
async function readCase(ctx, id) {
  const c = await api(path(id));
  const signed = await readStatement("case", fromBase64(c.statement));
  const header = fromBase64(c.header);
  if (signed.case_id !== c.id || signed.user_id !== c.opened_by
      || [...signed.people].sort().join() !== [...c.people].sort().join()) {
    throw new Stop("the gateway's case does not match its signed statement");
  }
  if (!(await registered(ctx, signed.user_id, signed.verify_key))) {
    throw new Stop("the case is signed by a key its opener never registered");
  }
  if ((await sha256Hex(header)) !== signed.header_sha256) throw new Stop("the case header is not the one its opener signed");
  let fields;
  try {
    fields = readHeader(await keyring.decrypt(header), c.id);
  } catch (error) {
    if (error instanceof CaseFormatError) throw error;
    throw new Stop("the case header does not open with your key");
  }
  return { c, fields, signed };
}

async function showCase(ctx, id, notice = null) {
  const view = begin(ctx);
  const back = el("button", { type: "button", class: "secondary", text: "Back to the cases",
    onclick: () => { window.location.hash = ""; } });
  show(root, "A referral case", el("p", { role: "status", text: "Checking the opener's signature and opening the header…" }), back);
  let read;
  try {
    read = await readCase(ctx, id);
  } catch (error) {
    if (current(ctx, view)) show(root, "A referral case", refusalBox(error), back);
    return;
  }
  if (!current(ctx, view)) return;
  const { c, fields, signed } = read;
  const status = el("div", { class: "case-status", "aria-live": "polite" });
  const facts = el("dl", { class: "facts case-header" },
    el("dt", { text: "Client" }), el("dd", { class: "client-name", text: fields.client_name || "—" }),
    el("dt", { text: "Contact" }), el("dd", { class: "contact", text: fields.contact || "—" }),
    el("dt", { text: "Reason" }), el("dd", { class: "reason", text: fields.reason || "—" }),
    el("dt", { text: "State" }), el("dd", { class: "state" }, STATE_WORDS[c.state] ?? c.state, overdue(c)),
    el("dt", { text: "Follow-up" }), el("dd", { class: "follow-up", text: day(c.follow_up_at) }),
    el("dt", { text: "Parties" }), el("dd", { text: `${c.clinic_org_id} (clinic) → ${c.spa_org_id} (spa)` }),
    el("dt", { text: "People" }), el("dd", { text: c.people.map((p) => who(ctx, p)).join(", ") }),
    el("dt", { text: "Opened" }), el("dd", { text: `${when(c.created_at)} by ${who(ctx, c.opened_by)}` }));
  const checks = el("ul", { class: "checks" },
    el("li", { text: `The opener's signature on the case statement checks out, with a key ${who(ctx, signed.user_id)} registered.` }),
    el("li", { text: "The case header is the one the opener signed; it was decrypted in this page." }));
  show(root, `Case ${c.ref}`, notice, facts, el("h2", { text: "Checked in this page" }), checks,
    isClinic(ctx, c) && c.state !== "closed" ? transitions(ctx, c, status) : null,
    !isClinic(ctx, c) && c.state !== "closed" && ctx.me.role === "recipient"
      ? el("p", { class: "report-link" }, el("a", { href: `/send?case=${encodeURIComponent(c.id)}`,
        text: "Send a follow-up report" })) : null,
    status,
    el("h2", { text: "Documents" }), documents(ctx, c, status),
    el("h2", { text: "Notes" }), notesPart(ctx, c), back);
}

function transitions(ctx, c, status) {
  const due = el("input", { type: "date", min: new Date(Date.now() + 86400000).toISOString().slice(0, 10) });
  const set = el("button", { type: "button", class: "secondary", text: "Set the follow-up date" });
  const close = el("button", { type: "button", class: "danger", text: "Close the case" });
  set.addEventListener("click", () => act(ctx, c, status, async () => {
    if (!due.value) throw new Stop("choose the follow-up date");
    await api(`${path(c.id)}/follow-up`, { method: "POST", body: { due: `${due.value}T09:00:00Z` } });
  }));
  close.addEventListener("click", () => act(ctx, c, status, async () => {
    if (!window.confirm(`Close case ${c.ref}? Nothing more can be sent under it.`)) throw new Stop("the case stays open");
    await api(`${path(c.id)}/close`, { method: "POST" });
  }));
  return el("div", { class: "case-actions" }, field("follow-up-date", "Follow-up date", due), set, close,
    ctx.me.role === "uploader" ? el("p", {}, el("a", { href: `/send?case=${encodeURIComponent(c.id)}`,
      text: "Send a summary under this case" })) : null);
}

async function act(ctx, c, status, work) {
  try {
    await work();
    await showCase(ctx, c.id);
  } catch (error) {
    status.replaceChildren(refusalBox(error));
  }
}

function documents(ctx, c, status) {
  if (!c.documents.length) return el("p", { class: "empty", text: "No documents under this case yet." });
  const rows = c.documents.map((d) => {
    const acks = Object.keys(d.acknowledged);
    const actions = el("div", { class: "document-actions" });
    if (d.recipients.includes(ctx.me.id) && !d.revoked_at) {
      actions.append(el("button", { type: "button", class: "secondary", text: "Download",
        onclick: (event) => guarded(event.target, status, () => download(ctx, d.id, status)) }));
      if (!d.acknowledged[ctx.me.id]) {
        actions.append(el("button", { type: "button", text: "Acknowledge",
          onclick: (event) => guarded(event.target, status, async () => {
            await acknowledge(ctx, d.id);
            await showCase(ctx, c.id, el("p", { class: "saved", role: "status", text: `Acknowledged ${d.id}: your `
              + "receipt was signed with your key in this page, over the manifest checked here, and stored." }));
          }) }));
      }
    }
    if (d.sender_id === ctx.me.id) {
      actions.append(el("button", { type: "button", class: "secondary", text: "Verify receipts",
        onclick: (event) => guarded(event.target, status, () => showReceipts(ctx, d.id, status)) }));
    }
    return el("tr", { "data-document": d.id },
      el("th", { scope: "row", "data-label": "Document" }, el("code", { text: d.id }),
        d.report ? el("span", { class: "org", text: " (follow-up report)" }) : null),
      el("td", { "data-label": "From" }, who(ctx, d.sender_id)),
      el("td", { "data-label": "Sent" }, when(d.created_at)),
      el("td", { "data-label": "Downloaded by" }, d.downloaded.map((u) => who(ctx, u)).join(", ") || "nobody yet"),
      el("td", { "data-label": "Acknowledged by" }, acks.map((u) => `${who(ctx, u)} (${when(d.acknowledged[u])})`).join(", ")
        || "nobody yet"),
      el("td", { "data-label": "Actions" }, actions));
  });
  const head = el("tr", {}, ...["Document", "From", "Sent", "Downloaded by", "Acknowledged by", ""]
    .map((text) => el("th", { scope: "col", text })));
  return el("table", { class: "case-documents" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

async function guarded(button, status, work) {
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    status.replaceChildren(refusalBox(error));
  } finally {
    button.disabled = false;
  }
}

/** The document's manifest verified here (signature, our key, meta) and its sender's key proven in the log. */
async function verifiedDocument(ctx, docId) {
  const info = await api(`/api/v1/documents/${encodeURIComponent(docId)}`);
  const manifest = await checkManifest({ ...info, document_id: info.id }, ctx.keys.recipient);
  if (manifest.sender?.user_id !== info.sender_id) throw new Stop("the manifest names another sender than the gateway does");
  const key = await registered(ctx, info.sender_id, manifest.sender.signing_key);
  if (!key) throw new Stop("the manifest is signed by a key its sender never registered");
  await checkUserKeys({ id: info.sender_id, email: info.sender_id, keys: key }, ctx.log);
  return { info, manifest, wire: fromBase64(info.manifest) };
}

async function download(ctx, docId, status) {
  status.replaceChildren(el("p", { text: "Checking the sender's signature and key, downloading and decrypting…" }));
  const { info, manifest } = await verifiedDocument(ctx, docId);
  if (manifest.content.size > MAX_IN_PAGE_BYTES) throw new Stop("this document is too large for the browser: fetch it with the CLI");
  const meta = JSON.parse(fromUtf8(await keyring.decrypt(fromBase64(info.meta))));
  const answer = await api(`/api/v1/documents/${encodeURIComponent(docId)}/content`,
    { headers: { Accept: "application/octet-stream" } });
  const sealed = new Uint8Array(await answer.arrayBuffer());
  if (sealed.length !== manifest.content.size || (await sha256Hex(sealed)) !== manifest.content.sha256) {
    throw new Stop("the file the gateway sent does not match the sender's manifest");
  }
  const plain = await keyring.decrypt(sealed);
  if ((await sha256Hex(plain)) !== meta.sha256) throw new Stop("the decrypted file does not match its metadata");
  save(plain, safeName(meta.name), meta.content_type);
  status.replaceChildren(el("p", { class: "saved", text: `Saved ${safeName(meta.name)} (${sizeText(plain.length)}) to your downloads, decrypted in this page.` }));
}

/** Your receipt (crypto/receipt.py), signed in the Worker over the manifest verified here now. */
async function acknowledge(ctx, docId) {
  const { wire: manifestWire } = await verifiedDocument(ctx, docId);
  const body = receiptBody({ documentId: docId, manifestSha256: await sha256Hex(manifestWire), userId: ctx.me.id,
    verifyKey: ctx.keys.signingKey });
  const receipt = wire("receipt", body, await keyring.sign(toSign("receipt", body)));
  await api(`/api/v1/documents/${encodeURIComponent(docId)}/receipts`, { method: "POST", body: { receipt: b64(receipt) } });
}

/** The receipts of a document you sent, each checked as `carebridge verify-receipt` does. */
async function verifyReceipts(ctx, docId) {
  const info = await api(`/api/v1/documents/${encodeURIComponent(docId)}`);
  if (info.sender_id !== ctx.me.id) throw new Stop("you did not send this document");
  const manifest = await checkManifest({ ...info, document_id: info.id }, ctx.keys.recipient);
  const digest = await sha256Hex(fromBase64(info.manifest));
  const recipients = new Set(manifest.recipients.map((r) => r.user_id).filter((u) => u !== ctx.me.id));
  const checked = [];
  for (const listed of (await api(`/api/v1/documents/${encodeURIComponent(docId)}/receipts`)).receipts) {
    const receipt = await readStatement("receipt", fromBase64(listed.receipt));
    if (receipt.document_id !== docId || receipt.manifest_sha256 !== digest) {
      throw new Stop(`${receipt.user_id}: the receipt is for another document or manifest`);
    }
    if (!recipients.has(receipt.user_id)) throw new Stop(`${receipt.user_id}: not a recipient of this document`);
    const key = await registered(ctx, receipt.user_id, receipt.verify_key);
    if (!key) throw new Stop(`${receipt.user_id}: the receipt is signed by a key they never registered`);
    const published = await checkUserKeys({ id: receipt.user_id, email: receipt.user_id, keys: key }, ctx.log);
    checked.push({ ...receipt, published });
  }
  return checked;
}

async function showReceipts(ctx, docId, status) {
  status.replaceChildren(el("p", { text: "Verifying the receipts…" }));
  const checked = await verifyReceipts(ctx, docId);
  status.replaceChildren(checked.length
    ? el("ul", { class: "receipts", "data-document": docId }, ...checked.map((r) => el("li", {},
      `Receipt of ${r.user_id}, signed ${when(r.time)}: the signature checks out over the manifest you signed `
      + `(SHA-256 ${r.manifest_sha256.slice(0, 16)}…), with a key proven in the access log (entry ${r.published.seq}, `
      + `checkpoint of ${r.published.size} entries).`)))
    : el("p", { class: "receipts", text: "No receipts yet: nobody has acknowledged this document." }));
}

// ---- notes ----

/** The case's notes, each author's signature checked with a key they registered, decrypted here. */
async function readNotes(ctx, c) {
  const out = [];
  for (const note of (await api(`${path(c.id)}/notes`)).notes) {
    const signed = await readStatement("note", fromBase64(note.statement));
    const body = fromBase64(note.body);
    if (signed.user_id !== note.author_id || signed.case_id !== c.id) {
      throw new Stop("a note's statement names another author or case than the gateway says");
    }
    if ((await sha256Hex(body)) !== signed.body_sha256) throw new Stop("a note's body is not the one its author signed");
    if (!(await registered(ctx, signed.user_id, signed.verify_key))) {
      throw new Stop("a note is signed by a key its author never registered");
    }
    let text;
    try {
      text = readNoteText(await keyring.decrypt(body), c.id);
    } catch (error) {
      if (error instanceof CaseFormatError) throw error;
      throw new Stop("a note does not open with your key");
    }
    out.push({ id: note.id, author: signed.user_id, time: signed.time, text });
  }
  return out;
}

/** The age recipients of the case's people, each active key proven in the log (yours from your key file). */
async function peopleRecipients(ctx, c) {
  const recipients = [ctx.keys.recipient];
  for (const userId of c.people.filter((p) => p !== ctx.me.id)) {
    const history = (await api(`/api/v1/users/${encodeURIComponent(userId)}/keys`)).keys;
    const active = history.find((k) => k.status === "active");
    if (!active) throw new Stop(`${userId} of the case has no active keys`);
    await checkUserKeys({ id: userId, email: userId, keys: active }, ctx.log);
    recipients.push(active.age_recipient);
  }
  return recipients;
}

async function addNote(ctx, c, text) {
  const plain = noteJson({ caseId: c.id, text });
  const body = await encryptTo(plain, await peopleRecipients(ctx, c));
  const signed = noteBody({ caseId: c.id, bodySha256: await sha256Hex(body), userId: ctx.me.id,
    verifyKey: ctx.keys.signingKey });
  const statement = wire("note", signed, await keyring.sign(toSign("note", signed)));
  await api(`${path(c.id)}/notes`, { method: "POST", body: { statement: b64(statement), body: b64(body) } });
}

function notesPart(ctx, c) {
  const thread = el("ol", { class: "notes" }, el("li", { role: "status", text: "Checking and opening the notes…" }));
  const draw = async () => {
    try {
      const notes = await readNotes(ctx, c);
      thread.replaceChildren(...(notes.length ? notes.map((n) => el("li", { "data-note": n.id },
        el("p", { class: "note-meta", text: `${who(ctx, n.author)}, ${when(n.time)} — signature checked` }),
        el("p", { class: "note-text", text: n.text })))
        : [el("li", { class: "empty", text: "No notes yet." })]));
    } catch (error) {
      thread.replaceChildren(el("li", {}, refusalBox(error)));
    }
  };
  draw();
  if (c.state === "closed") return thread;
  const text = el("textarea", { maxlength: String(MAX_NOTE_CHARS), rows: "3" });
  const status = el("div", { "aria-live": "polite" });
  const button = el("button", { type: "submit", text: "Encrypt, sign and add the note" });
  const form = el("form", { class: "add-note" }, field("note-text", "A note for the case's people (encrypted)", text),
    button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.replaceChildren(el("p", { text: "Checking the people's keys, encrypting and signing…" }));
    try {
      await addNote(ctx, c, text.value);
      text.value = "";
      status.replaceChildren();
      await draw();
    } catch (error) {
      status.replaceChildren(refusalBox(error));
    }
    button.disabled = false;
  });
  return el("div", {}, thread, form);
}

// ---- start ----

function route(ctx) {
  const id = decodeURIComponent(window.location.hash.slice(1));
  if (id) showCase(ctx, id);
  else showList(ctx);
}

async function start() {
  const me = await requireSession();
  if (me.role !== "uploader" && me.role !== "recipient") {
    show(root, "Referral cases", alertBox("Referral cases are for a clinic's senders and a spa's recipients."));
    return;
  }
  if (!me.keys) {
    show(root, "Referral cases", alertBox("You have not registered keys yet: set them up on the Keys page."));
    return;
  }
  const ctx = { me, log: await logKey(), histories: new Map(), views: 0 };
  ctx.keys = await unlock(ctx, await keyring.storedKeyFileText());
  auditInPage(me, ctx.keys); // the keys the log holds for me, compared with these (as /inbox and /send)
  window.addEventListener("hashchange", () => route(ctx));
  route(ctx);
}

start().catch((error) => show(root, "Referral cases", refusalBox(error)));
