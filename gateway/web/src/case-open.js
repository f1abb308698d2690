// The case pages, part 2: a clinic person opens a case. The header (client's name, contact,
// reason) is encrypted here to the spa people, their keys proven in the log first, and to
// herself; the statement is signed in the keyring Worker. Only ciphertext and ids are sent.
import { sha256Hex } from "./lib/bytes.js";
import { MAX_HEADER_FIELD, caseBody, headerJson, newCaseId, toSign, wire } from "./lib/caseformat.js";
import * as keyring from "./lib/keyring.js";
import { lookUp } from "./lib/recipients.js";
import { api } from "./lib/session.js";
import { encryptTo } from "./lib/upload.js";
import { el, field, show } from "./lib/ui.js";
import { Stop, b64, begin, refusalBox, root } from "./case-shared.js";

const MAX_SPA_PEOPLE = 49; // crypto/case.py MAX_PEOPLE, less the opener
const MAX_ACK_DAYS = 365; // usecases/cases.py: ack_within is at most 365 days

export function openForm(ctx) {
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
    el("p", {}, el("button", { type: "button", class: "secondary", text: "Back to the cases", onclick: () => ctx.go.list() })));
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
