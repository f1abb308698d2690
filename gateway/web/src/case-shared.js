// What the case pages share (cases.js wires them): the refusal in words, times, the view
// counter, the log line, and who a case's ids are. The gateway names people and orgs by id;
// each case carries its `directory` (its own people's e-mails and its two orgs' names, no one
// else's), so the pages show those, "you" for oneself, and an id only where no name is known.
import { CaseFormatError } from "./lib/caseformat.js";
import { KeyFileError } from "./lib/keyfile.js";
import { KeyringError, decrypt } from "./lib/keyring.js";
import { ManifestError } from "./lib/manifest.js";
import { RecipientError } from "./lib/recipients.js";
import { ApiError, api } from "./lib/session.js";
import { LogError } from "./lib/tlog.js";
import { UploadError } from "./lib/upload.js";
import { alertBox, el, sentence } from "./lib/ui.js";

export const STATE_WORDS = { open: "open", delivered: "delivered", acknowledged: "acknowledged",
  follow_up_due: "follow-up due", closed: "closed" };

export const root = document.getElementById("app");

export class Stop extends Error {} // a message for the person, already in words

const OURS = [Stop, CaseFormatError, ManifestError, LogError, KeyringError, KeyFileError, RecipientError, UploadError];

export function refusalBox(error) {
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

export const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "—");
export const day = (iso) => (iso ? new Date(iso).toLocaleDateString([], { dateStyle: "medium" }) : "—");
export const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
export const path = (id) => `/api/v1/cases/${encodeURIComponent(id)}`;

/** A person of case *c* in words: "you", else their e-mail, else (not in the case's directory) the id. */
export const who = (ctx, c, id) => (id === ctx.me.id ? "you" : emailOf(c, id));
/** A person's e-mail (or id), also for oneself: for messages about their keys. */
export const emailOf = (c, id) => c.directory?.users?.[id]?.email ?? id;
/** An organisation of case *c* by its name (or id). */
export const orgName = (c, id) => c.directory?.orgs?.[id]?.name ?? id;
export const isClinic = (ctx, c) => c.clinic_org_id === ctx.me.org_id;

/** A view's number: a view still loading when a newer one started must not draw over it. */
export const begin = (ctx) => ++ctx.views;
export const current = (ctx, view) => view === ctx.views;

export function logLine(ctx) {
  return el("p", { class: "log-key" }, "Keys are checked against the access log of ", el("code", { text: ctx.log.origin }),
    ", whose key has the fingerprint ", el("code", { class: "fingerprint", text: ctx.log.fingerprint }), ".");
}

/** Why the case is overdue, in words (the gateway lists "follow_up" and "acknowledgement:<doc>"); null if not. */
export function overdue(c) {
  if (!c.overdue.length) return null;
  const why = [...new Set(c.overdue.map((r) => (r === "follow_up" ? "follow-up date passed" : "acknowledgement due")))];
  return el("strong", { class: "overdue", text: ` — overdue: ${why.join(", ")}` });
}

// A sealed part of a case (its header, a note) decrypted with the unlocked keys and read by
// *read*: a part that is malformed is the reader's own CaseFormatError, any other failure
// (not sealed to these keys) is *refusal*, in words.
export async function openSealed(sealed, read, caseId, refusal) {
  try {
    return read(await decrypt(sealed), caseId);
  } catch (error) {
    if (error instanceof CaseFormatError) throw error;
    throw new Stop(refusal);
  }
}

/** A signer's key must be one they registered (cases.py read_case); the history is fetched once a user. */
export async function registered(ctx, userId, verifyKey) {
  if (!ctx.histories.has(userId)) {
    ctx.histories.set(userId, (await api(`/api/v1/users/${encodeURIComponent(userId)}/keys`)).keys);
  }
  return ctx.histories.get(userId).find((k) => k.verify_key === verifyKey) ?? null;
}
