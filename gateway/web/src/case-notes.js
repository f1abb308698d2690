// The case pages, part 5: a case's notes, encrypted to the case's people and signed here; each
// read back with its author's signature checked against a key they registered, decrypted here.
import { fromBase64, sha256Hex } from "./lib/bytes.js";
import { MAX_NOTE_CHARS, noteBody, noteJson, readNoteText, readStatement, toSign,
  wire } from "./lib/caseformat.js";
import * as keyring from "./lib/keyring.js";
import { checkUserKeys } from "./lib/recipients.js";
import { api } from "./lib/session.js";
import { encryptTo } from "./lib/upload.js";
import { el, field } from "./lib/ui.js";
import { Stop, b64, emailOf, openSealed, path, refusalBox, registered, when, who } from "./case-shared.js";

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
    const text = await openSealed(body, readNoteText, c.id, "a note does not open with your key");
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
    if (!active) throw new Stop(`${emailOf(c, userId)} of the case has no active keys`);
    await checkUserKeys({ id: userId, email: emailOf(c, userId), keys: active }, ctx.log);
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

/** The thread (drawn when its notes are checked) and, while the case is open, the form to add one. */
export function notesPart(ctx, c) {
  const thread = el("ol", { class: "notes" }, el("li", { role: "status", text: "Checking and opening the notes…" }));
  const draw = async () => {
    try {
      const notes = await readNotes(ctx, c);
      thread.replaceChildren(...(notes.length ? notes.map((n) => el("li", { "data-note": n.id },
        el("p", { class: "note-meta", text: `${who(ctx, c, n.author)}, ${when(n.time)} — signature checked` }),
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
