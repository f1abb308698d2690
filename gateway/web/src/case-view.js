// The case pages, part 3: one case, read and checked as `carebridge case show` does: the
// opener's signed statement checked with a key they registered, the header (client's name,
// contact, reason) decrypted in the keyring Worker; the clinic's follow-up date and close; the
// documents under the case (case-documents.js) and the notes (case-notes.js).
import { fromBase64, sha256Hex } from "./lib/bytes.js";
import { readHeader, readStatement } from "./lib/caseformat.js";
import { api } from "./lib/session.js";
import { el, field, show } from "./lib/ui.js";
import { acknowledge, download, showReceipts } from "./case-documents.js";
import { notesPart } from "./case-notes.js";
import { STATE_WORDS, Stop, begin, current, day, isClinic, openSealed, orgName, overdue, path, refusalBox, registered,
  root, when, who } from "./case-shared.js";

/** The case, its statement checked against the gateway's account of it; the header's fields decrypted here. */
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
  const fields = await openSealed(header, readHeader, c.id, "the case header does not open with your key");
  return { c, fields, signed };
}

/** The case *id* (or its CB- reference), with *notice* (an element, or null) above it. */
export async function showCase(ctx, id, notice = null) {
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
    el("dt", { text: "Parties" }), el("dd", { class: "parties",
      text: `${orgName(c, c.clinic_org_id)} (clinic) → ${orgName(c, c.spa_org_id)} (spa)` }),
    el("dt", { text: "People" }), el("dd", { class: "people", text: c.people.map((p) => who(ctx, c, p)).join(", ") }),
    el("dt", { text: "Opened" }), el("dd", { class: "opened", text: `${when(c.created_at)} by ${who(ctx, c, c.opened_by)}` }));
  const checks = el("ul", { class: "checks" },
    el("li", { text: `The opener's signature on the case statement checks out, with a key ${who(ctx, c, signed.user_id)} registered.` }),
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
        onclick: (event) => guarded(event.target, status, () => download(ctx, c, d.id, status)) }));
      if (!d.acknowledged[ctx.me.id]) {
        actions.append(el("button", { type: "button", text: "Acknowledge",
          onclick: (event) => guarded(event.target, status, async () => {
            await acknowledge(ctx, c, d.id);
            await showCase(ctx, c.id, el("p", { class: "saved", role: "status", text: `Acknowledged ${d.id}: your `
              + "receipt was signed with your key in this page, over the manifest checked here, and stored." }));
          }) }));
      }
    }
    if (d.sender_id === ctx.me.id) {
      actions.append(el("button", { type: "button", class: "secondary", text: "Verify receipts",
        onclick: (event) => guarded(event.target, status, () => showReceipts(ctx, c, d.id, status)) }));
    }
    return el("tr", { "data-document": d.id },
      el("th", { scope: "row", "data-label": "Document" }, el("code", { text: d.id }),
        d.report ? el("span", { class: "org", text: " (follow-up report)" }) : null),
      el("td", { "data-label": "From" }, who(ctx, c, d.sender_id)),
      el("td", { "data-label": "Sent" }, when(d.created_at)),
      el("td", { "data-label": "Downloaded by" }, d.downloaded.map((u) => who(ctx, c, u)).join(", ") || "nobody yet"),
      el("td", { "data-label": "Acknowledged by" }, acks.map((u) => `${who(ctx, c, u)} (${when(d.acknowledged[u])})`)
        .join(", ") || "nobody yet"),
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
