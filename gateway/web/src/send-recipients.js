// The send page's recipients: looked up in the directory (an e-mail, org:NAME, or picked from
// the clinic's referrals) with each key checked against the access log here (lib/recipients.js),
// as `carebridge send --to` does; under a referral case (?case=), a spa person's follow-up
// report goes to the case's clinic people instead, shown by the e-mail the case names them by.
// The fieldsets fill ctx.users (id -> {id, email, keys, published}) and ctx.orgs.
import { ORG_PREFIX, RecipientError, checkUserKeys, choices, lookUp } from "./lib/recipients.js";
import { api } from "./lib/session.js";
import { el, field } from "./lib/ui.js";

/**
 * The referral case the page's ?case= names (an id or CB- reference), as `send --case`; null if
 * none. {id, ref, report, clinicPeople, emails}: *report* when *me* is on the spa's side (a
 * follow-up report); *emails* the case's people's e-mails by id (its directory).
 */
export async function underCase(me) {
  const key = new URLSearchParams(window.location.search).get("case");
  if (!key) return null;
  const found = await api(`/api/v1/cases/${encodeURIComponent(key)}`);
  if (found.state === "closed") throw new RecipientError(`case ${found.ref} is closed: nothing more is sent under it`);
  const emails = new Map(Object.entries(found.directory?.users ?? {}).map(([id, user]) => [id, user.email]));
  return { id: found.id, ref: found.ref, report: me.org_id === found.spa_org_id,
    clinicPeople: found.clinic_people.filter((id) => id !== me.id), emails };
}

/**
 * A follow-up report goes to the case's clinic people (as `carebridge send --case` from the spa):
 * each one's active key, from their key history, checked against the log here.
 */
export async function addClinicPeople(ctx) {
  const { clinicPeople, emails } = ctx.underCase;
  if (!clinicPeople.length) throw new RecipientError("the case has nobody at the clinic to send to");
  for (const id of clinicPeople) {
    const email = emails.get(id) ?? id;
    const active = (await api(`/api/v1/users/${encodeURIComponent(id)}/keys`)).keys.find((k) => k.status === "active");
    if (!active) throw new RecipientError(`${email} of the case has not registered keys yet`);
    const user = { id, email, keys: active };
    ctx.users.set(id, { ...user, published: await checkUserKeys(user, ctx.log) });
  }
}

function recipientLine(u) {
  return el("li", { "data-user": u.id }, el("strong", { text: u.email }),
    ` — key checked: published in the access log, entry ${u.published.seq} (checkpoint of ${u.published.size} entries)`);
}

function logNote(ctx) {
  return el("p", { class: "note", text: `Each key is checked against the access log of ${ctx.log.origin} `
    + `(log key fingerprint ${ctx.log.fingerprint}) before anything is encrypted to it.` });
}

/** A report's recipients: the case's clinic people, already checked; no directory, no picker. */
export function reportRecipientsPart(ctx) {
  return el("fieldset", { class: "recipients" }, el("legend", { text: "Recipients: the case's clinic people" }),
    el("ul", { class: "recipients" }, ...[...ctx.users.values()].map(recipientLine)), logNote(ctx));
}

/** The recipients fieldset; *refusalBox(error)* puts a refusal in words under it. */
export function recipientsPart(ctx, refusalBox) {
  const entry = el("input", { type: "text", autocomplete: "off", placeholder: "name@spa.example or org:Spa name" });
  const list = el("ul", { class: "recipients" });
  const status = el("div", { role: "status", "aria-live": "polite", class: "lookup" });
  const add = el("button", { type: "button", class: "secondary", text: "Add recipient" });
  const draw = () => list.replaceChildren(...[...ctx.users.values()].map(recipientLine));
  async function lookup() {
    if (!entry.value.trim()) return;
    add.disabled = true;
    status.replaceChildren(el("p", { text: "Looking up and checking the key against the access log…" }));
    try {
      const found = await lookUp(entry.value, ctx.log);
      const ids = new Set([...ctx.users.keys(), ...found.users.map((u) => u.id)]);
      const most = ctx.me.ceilings.max_recipients; // the gateway's ceiling (the manifest's 64 with the sender)
      if (ids.size > most) throw new RecipientError(`a document goes to at most ${most} recipients`);
      for (const user of found.users) ctx.users.set(user.id, user);
      if (found.org) ctx.orgs.add(found.org);
      status.replaceChildren(el("p", { text: `Added ${found.users.length} recipient(s).` }));
      entry.value = "";
      draw();
    } catch (error) {
      status.replaceChildren(refusalBox(error));
    } finally {
      add.disabled = false;
    }
  }
  add.addEventListener("click", lookup);
  entry.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); lookup(); } });
  const picker = pickerPart((name) => { entry.value = name; lookup(); }, (error) => status.replaceChildren(refusalBox(error)));
  return el("fieldset", { class: "recipients" }, el("legend", { text: "Recipients" }),
    picker, field("recipient", "Recipient: an e-mail address, or org: and a spa's name for all its people", entry),
    add, status, list, logNote(ctx));
}

/**
 * A list of the spas the clinic has a referral with (whole spas) and their people, a page at a
 * time; choosing one hands its name to *pick*, which looks it up and checks its key as if typed.
 */
function pickerPart(pick, refused) {
  const spas = el("optgroup", { label: "A whole spa (all its people)" });
  const people = el("optgroup", { label: "A person" });
  const select = el("select", {}, el("option", { value: "", text: "Choose from your clinic's referrals…" }),
    spas, people);
  const more = el("button", { type: "button", class: "secondary", text: "More people", hidden: "" });
  let next = null;
  async function page(after) {
    more.disabled = true; // one page at a time
    try {
      const found = await choices(after);
      if (!after) {
        spas.replaceChildren(...found.spas.map((o) => el("option", { value: ORG_PREFIX + o.name, text: o.name })));
      }
      // Someone without keys cannot receive yet: shown, not choosable.
      people.append(...found.users.map((u) => el("option", { value: u.email, ...(u.has_keys ? {} : { disabled: "" }),
        text: u.has_keys ? u.email : `${u.email} (no keys registered yet)` })));
      next = found.next;
      more.hidden = !next;
    } catch (error) {
      refused(error);
    } finally {
      more.disabled = false;
    }
  }
  select.addEventListener("change", () => {
    if (!select.value) return;
    pick(select.value);
    select.value = "";
  });
  more.addEventListener("click", () => page(next));
  page(null);
  return el("p", { class: "field picker" }, el("label", { for: "pick", text: "Pick a recipient" }),
    Object.assign(select, { id: "pick" }), " ", more);
}
