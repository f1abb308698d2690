// The send page, part 2: what `carebridge send` does after the redaction gate,
// done in this page. Recipients are looked up in the directory and their keys
// checked against the access log here (send-recipients.js); a spa person's follow-up report
// under a case (?case=) goes to the case's clinic people, as with the CLI. The sender's key file is
// unlocked in the keyring Worker, which signs the manifest (lib/keyring.js); the sanitized
// PDF and its meta are encrypted here with typage to the recipients and the sender
// (lib/upload.js); the manifest and policy are the CLI's, byte for byte
// (lib/manifest-make.js); the upload shows its progress and can be cancelled.
// Requests carry ciphertext, the signed manifest, the policy and ids only: never
// the plaintext, the file name, the note, the passphrase or the key file.
import { concat, fromUtf8, sha256Hex, utf8 } from "./lib/bytes.js";
import { KeyFileError, MAX_KEY_FILE_SIZE } from "./lib/keyfile.js";
import { MAX_NOTE_CHARS, SendError, canonicalJson, manifestObject, manifestWire, metaJson, newDocumentId,
  policyJson } from "./lib/manifest-make.js";
import { RecipientError, checkUserKeys, logKey, spaOf } from "./lib/recipients.js";
import { auditInPage } from "./lib/keyaudit.js";
import * as keyring from "./lib/keyring.js";
import { KeyringError } from "./lib/keyring.js";
import { ApiError, api, currentPerson, signInUrl } from "./lib/session.js";
import { LogError } from "./lib/tlog.js";
import { UploadError, digestOf, encryptTo, upload } from "./lib/upload.js";
import { alertBox, el, field, sentence, show, sizeText } from "./lib/ui.js";
import { PolicyError, policyPart } from "./send-policy.js";
import { addClinicPeople, recipientsPart, reportRecipientsPart, underCase } from "./send-recipients.js";


class Stop extends Error {} // a message for the person, already in words

const OURS = [Stop, PolicyError, SendError, RecipientError, KeyringError, KeyFileError, LogError, UploadError];
const MANIFEST_STATEMENT = "carebridge/v1/document-manifest\0"; // crypto/signing.py domain + MANIFEST_CONTEXT

/** The sender's keys: the shared keyring Worker unlocks them and signs the manifest's statement. */
const senderKeys = {
  unlock: ({ keyFileText, passphrase }) => keyring.unlock({ keyFileText, passphrase }),
  signManifest: (manifestJson) => keyring.sign(concat(utf8(MANIFEST_STATEMENT), utf8(manifestJson))),
};

function refusal(error) {
  if (error instanceof ApiError) {
    return `The gateway refused: ${error.title || `HTTP ${error.status}`}${error.detail ? ` (${error.detail})` : ""}.`;
  }
  return OURS.some((kind) => error instanceof kind) ? sentence(error.message)
    : "Something failed in this page; reload it and try again.";
}

function refusalBox(error) {
  const box = alertBox(refusal(error));
  if (error instanceof ApiError) box.dataset.problem = error.type;
  return box;
}

/**
 * Who is sending, and what the page needs before a form makes sense; throws Stop in words.
 * A clinic's uploader sends summaries; a spa's recipient only follow-up reports, under a case.
 */
async function sender(checked) {
  const me = await currentPerson();
  if (!me) return null;
  if (me.role !== "uploader" && me.role !== "recipient") {
    throw new Stop("only a clinic's uploaders send documents, and a spa's people follow-up reports");
  }
  if (!me.keys) throw new Stop("you have not registered keys yet: run `carebridge keys register`");
  // The server refuses a manifest that does not name the clinic's current profile: the file
  // must have been checked under it (it may have changed, or the person signed in since).
  // A report names none (checked with every rule blocking): the spa has no clinic's profile.
  if (me.role === "uploader") {
    const current = await api("/api/v1/redaction-profile");
    const applied = checked.profile;
    if ((current?.id ?? null) !== (applied?.id ?? null) || (current?.version ?? null) !== (applied?.version ?? null)) {
      throw new Stop("the file was not checked under your clinic's current redaction profile: choose the file again");
    }
  }
  return me;
}

/**
 * The send step for a file the gate passed: *checked* is {name, sanitized (bytes),
 * override ({rules, reason}) or null, profile ({id, version} of the clinic's profile applied) or null}.
 */
export async function sendStep(root, checked) {
  show(root, "Send the sanitized summary", el("p", { role: "status", text: "Checking your session and the access log…" }));
  let ctx;
  try {
    const me = await sender(checked);
    if (!me) {
      show(root, "Sign in to send", el("p", {}, "Sending needs your session: ",
        el("a", { href: signInUrl(), text: "sign in" }), ", then choose the file again."));
      return;
    }
    const log = await logKey();
    // The CLI trusts its own key file over the directory; the page also checks that the gateway
    // published the sender's key (the one the key file must match), as recipients will.
    await checkUserKeys(me, log);
    ctx = { me, checked, log, keys: senderKeys, stored: await keyring.storedKeyFileText(), underCase: await underCase(me),
      users: new Map(), orgs: new Set(), unlocked: null };
    if (ctx.underCase?.report) await addClinicPeople(ctx);
    else if (me.role !== "uploader") {
      throw new Stop("a spa's people send only follow-up reports, under a case: use the link on the case, on /cases");
    }
  } catch (error) {
    show(root, "Send the sanitized summary", refusalBox(error));
    return;
  }
  form(root, ctx);
}

function form(root, ctx) {
  const policy = policyPart(ctx.me.ceilings);
  const note = el("textarea", { maxlength: String(MAX_NOTE_CHARS), rows: "3" });
  const keyFile = ctx.stored ? null : el("input", { type: "file" });
  const passphrase = el("input", { type: "password", autocomplete: "off" });
  const status = el("div", { class: "sending", "aria-live": "polite" });
  const button = el("button", { type: "submit", text: "Encrypt, sign and send" });
  const key = el("fieldset", { class: "key" }, el("legend", { text: "Your key (signs the manifest; you can open what you send)" }),
    keyFile ? field("keyfile", "Your carebridge key file", keyFile) : el("p", { text: "Your key file is kept on this gateway, encrypted with your passphrase." }),
    field("keypass", "Key file passphrase", passphrase),
    el("p", { class: "note", text: "The key file is opened in this page (a Worker); it and the passphrase never leave it." }));
  // novalidate: the page's own checks refuse in sentences (the browser's bubbles would say less).
  const report = ctx.underCase?.report;
  const sending = el("form", { class: "send", novalidate: "" }, report ? reportRecipientsPart(ctx) : recipientsPart(ctx, refusalBox),
    policy.fieldset,
    el("fieldset", {}, el("legend", { text: "Note for the recipients (encrypted)" }), field("note", "Note", note)),
    key, button, status);
  sending.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const options = policy.options();
      if (!ctx.users.size) throw new Stop("add at least one recipient");
      await unlock(ctx, keyFile, passphrase);
      const prepared = await prepare(ctx, options, note.value, status);
      const answer = await send(prepared, status);
      sent(root, ctx, answer);
      return;
    } catch (error) {
      status.replaceChildren(refusalBox(error));
    }
    button.disabled = false;
  });
  const { checked } = ctx;
  show(root, report ? "Send the follow-up report" : "Send the sanitized summary",
    el("p", { class: "summary", text: `What will be encrypted: the sanitized PDF, ${sizeText(checked.sanitized.length)}`
      + (checked.override ? `, with overrides of ${checked.override.rules.join(", ")} signed into the manifest.` : ".") }),
    ctx.underCase ? el("p", { class: "under-case", text: `Under referral case ${ctx.underCase.ref} (signed into the `
      + `manifest): ${report ? "a follow-up report, back to the case's clinic people" : "send it to the case's spa people"}.` })
      : null,
    sending);
}

/** Open the key file in the Worker (once) and check it is the key registered for the sender. */
async function unlock(ctx, keyFile, passphrase) {
  if (ctx.unlocked) return;
  let keyFileText = ctx.stored;
  if (!keyFileText) {
    const chosen = keyFile.files[0];
    if (!chosen) throw new Stop("choose your key file");
    if (chosen.size > MAX_KEY_FILE_SIZE) throw new Stop("that file is too large to be a key file");
    try {
      keyFileText = fromUtf8(new Uint8Array(await chosen.arrayBuffer()));
    } catch {
      throw new Stop("that file is not a key file");
    }
  }
  const mine = await ctx.keys.unlock({ keyFileText, passphrase: passphrase.value });
  passphrase.value = "";
  if (mine.recipient !== ctx.me.keys.age_recipient || mine.signingKey !== ctx.me.keys.verify_key) {
    throw new Stop("your key file is not your registered key: register it with `carebridge keys register`");
  }
  ctx.unlocked = mine;
  auditInPage(ctx.me, mine); // the keys the log holds for me, compared with these
}

/** Encrypt, build the policy and the manifest and sign it: the four parts of the upload. */
async function prepare(ctx, options, note, status) {
  status.replaceChildren(el("p", { role: "status", text: "Encrypting and signing in this page…" }));
  const { checked, me, unlocked } = ctx;
  const users = [...ctx.users.values()];
  const named = [...users.map((u) => [u.id, u.keys.age_recipient]), [me.id, unlocked.recipient]];
  const recipients = named.map(([, r]) => r);
  const meta = metaJson({ name: checked.name, sha256: await sha256Hex(checked.sanitized),
    size: checked.sanitized.length, note });
  const content = await encryptTo(checked.sanitized, recipients);
  const metaSealed = await encryptTo(meta, recipients);
  const policy = utf8(canonicalJson(policyJson(users.map((u) => u.id), { ...options, spa: spaOf(users, ctx.orgs) })));
  const manifest = canonicalJson(manifestObject({
    documentId: newDocumentId(), sender: { userId: me.id, signingKey: unlocked.signingKey }, recipients: named,
    content: await digestOf(content), meta: await digestOf(metaSealed), policyDigest: await sha256Hex(policy),
    overrides: (checked.override?.rules ?? []).map((rule) => ({ rule_id: rule, reason: checked.override.reason })),
    redactionProfile: checked.profile,
    // The served release that signs it: a release later found bad names the documents it sent.
    webRelease: document.querySelector('meta[name="carebridge-release"]')?.content ?? null,
    caseId: ctx.underCase?.id ?? null,
  }));
  const signature = await ctx.keys.signManifest(manifest);
  return { manifest: manifestWire(manifest, signature), policy, meta: metaSealed, content };
}

/** Upload with a progress bar and a Cancel button; resolves to the gateway's answer. */
async function send(parts, status) {
  const bar = el("progress", { id: "upload-progress", max: "100", value: "0" });
  const words = el("span", { role: "status", text: "Uploading…" });
  const cancel = el("button", { type: "button", class: "secondary", text: "Cancel upload" });
  const total = parts.content.length + parts.meta.length;
  const job = upload(parts, (loaded, size) => {
    const pct = size ? Math.min(100, Math.round((loaded / size) * 100)) : 0;
    bar.value = pct;
    words.textContent = `Uploading… ${pct}% of ${sizeText(total)}`;
  });
  cancel.addEventListener("click", () => job.cancel());
  status.replaceChildren(el("p", { class: "progress" }, el("label", { for: "upload-progress", text: "Upload " }), bar,
    " ", words, " ", cancel));
  try {
    return await job.done;
  } catch (error) {
    if (error instanceof UploadError && /cancelled/.test(error.message)) {
      throw new Stop("the upload was cancelled: nothing was sent, and the gateway keeps nothing of it");
    }
    throw error;
  }
}

function sent(root, ctx, answer) {
  const users = [...ctx.users.values()];
  show(root, "Sent",
    el("p", { role: "status", class: "ok", text: "Encrypted in this page, signed with your key and stored on the gateway." }),
    el("dl", { class: "facts" },
      el("dt", { text: "Document" }), el("dd", {}, el("code", { class: "document-id", text: answer.id })),
      el("dt", { text: "To" }), el("dd", { text: users.map((u) => u.email).join(", ") }),
      el("dt", { text: "Expires" }), el("dd", { text: answer.expires_at
        ? new Date(answer.expires_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "never" })),
    el("p", {}, ctx.underCase?.report ? el("a", { href: `/cases#${encodeURIComponent(ctx.underCase.id)}`, text: "Back to the case" })
      : el("a", { href: "/send", text: "Send another summary" })));
}
