// The owner's half of key transparency in the page, as `carebridge keys audit`
// does it (gateway/client/keyaudit.py): the gateway could publish a key of its
// own making for me, so the page lists every key registration the log holds
// for me, proves each in a checkpoint signed by the log key (lib/tlog.js),
// checks that checkpoint extends the one this browser audited last, and
// compares each registered key with my own (the unlocked keyring's). One that
// is not mine is an alarm a person cannot miss.
//
// What the browser keeps (localStorage, per user): the fingerprint of the log key
// it audits under, the last checkpoint's size and root hash, the seqs of registrations
// accepted as mine (matched by the keyring, made on /keys/new, or "I made
// this"). No key and nothing secret; the next audit proves only what is new.
//
//   const report = await auditKeys(me, keys);   // keys: publicKeys() of lib/keyring.js, or null
//   await auditInPage(me, keys);                // the same, its alarm shown above the page
import { fromBase64, fromUtf8 } from "./bytes.js";
import { recipientFingerprint, signingKeyFingerprint } from "./fingerprint.js";
import { logKey } from "./recipients.js";
import { ApiError, api } from "./session.js";
import { checkPublished, openCheckpoint, verifyConsistency } from "./tlog.js";
import { el, sentence } from "./ui.js";

const STORE = "carebridge.keys-audit."; // + the user id
const MAX_ACCEPTED = 1000; // seqs remembered per user: a person registers a handful of keys
const MAX_LISTED = 1000; // registrations proven in one audit: more is no person's doing
const TEXT = { headers: { Accept: "text/plain" } };

/** The log itself did not hold up (bad signature, proof or history): nothing it lists can be trusted. */
export class KeyAlarm extends Error {}

function load(userId) {
  try {
    const state = JSON.parse(localStorage.getItem(STORE + userId) ?? "null");
    if (typeof state?.log === "string" && Number.isSafeInteger(state.size) && typeof state.root === "string"
      && Array.isArray(state.accepted) && state.accepted.every(Number.isSafeInteger)) return state;
  } catch { /* a damaged state: start over, as a first audit */ }
  return { log: "", size: 0, root: "", accepted: [] };
}

function store(userId, state) {
  const accepted = [...new Set(state.accepted)].sort((a, b) => a - b).slice(-MAX_ACCEPTED);
  localStorage.setItem(STORE + userId, JSON.stringify({ ...state, accepted }));
}

/** The registration at *seq* is mine after all (`keys audit --accept SEQ`), or was just made here. */
export function accept(userId, seq) {
  const state = load(userId);
  store(userId, { ...state, accepted: [...state.accepted, seq] });
}

const b64 = (bytes) => btoa(String.fromCharCode(...bytes));

async function bytesOf(response) {
  return new Uint8Array(await response.arrayBuffer());
}

/** The latest checkpoint, signed by the log key; and that it extends the one audited before. */
async function checkpointAfter(state, log) {
  const note = await bytesOf(await api("/api/v1/audit/checkpoint", TEXT));
  let checkpoint;
  try {
    checkpoint = await openCheckpoint(note, log, log.origin);
  } catch (error) {
    throw new KeyAlarm(`the gateway's checkpoint is refused: ${error.message}`);
  }
  if (!state.size) return checkpoint;
  if (checkpoint.size < BigInt(state.size)) {
    throw new KeyAlarm(`the log shrank: a checkpoint of size ${checkpoint.size} after ${state.size}`);
  }
  let proof = [];
  if (checkpoint.size > BigInt(state.size)) {
    const answer = await api(`/api/v1/audit/proof/consistency?old=${state.size}&size=${checkpoint.size}`);
    const decode = (h) => { try { return fromBase64(h); } catch { return null; } };
    proof = Array.isArray(answer?.proof) ? answer.proof.map(decode) : [null];
  }
  if (proof.some((h) => h?.length !== 32)
    || !(await verifyConsistency(BigInt(state.size), checkpoint.size, proof, fromBase64(state.root), checkpoint.root))) {
    throw new KeyAlarm(`the log of size ${checkpoint.size} does not extend the one this browser audited at size ${state.size}`);
  }
  return checkpoint;
}

/** One listed registration, proven in *checkpoint*: {seq, time, recipient, signingKey, fingerprints}. */
async function prove(record, me, log, checkpoint) {
  const seq = record.log_seq;
  const proof = await bytesOf(await api(`/api/v1/audit/proof/inclusion?index=${seq}&size=${checkpoint.size}`, TEXT));
  let published;
  try {
    published = await checkPublished(record, me.id, proof, log, log.origin);
  } catch (error) {
    throw new KeyAlarm(`log entry ${seq}: the registration the gateway lists for you does not hold up (${error.message})`);
  }
  if (BigInt(published.size) !== checkpoint.size || b64(published.root) !== b64(checkpoint.root)) {
    throw new KeyAlarm(`log entry ${seq}: the inclusion proof is for another checkpoint`);
  }
  const time = JSON.parse(fromUtf8(fromBase64(record.log_entry))).time ?? "";
  return { seq, time: String(time), recipient: record.age_recipient, signingKey: record.verify_key,
    fingerprints: { recipient: await recipientFingerprint(record.age_recipient),
      signingKey: await signingKeyFingerprint(fromBase64(record.verify_key.slice("ed25519:".length))) } };
}

/**
 * Audit the registrations of *me* (GET /api/v1/me) from what this browser saw
 * last. *keys* ({recipient, signingKey}, the keyring's) decide which are mine;
 * without them the new ones are listed as not compared. Returns {previous,
 * size, found, unexpected, unchecked, hidden, pending}. Throws KeyAlarm when the
 * log does not hold up (nothing is saved then), ApiError when the gateway refuses.
 */
export async function auditKeys(me, keys = null) {
  const log = await logKey();
  const state = load(me.id);
  if (state.log && state.log !== log.fingerprint) {
    throw new KeyAlarm("the gateway's log key is not the one this browser audited your keys under before: "
      + "the log was replaced, or this is not your gateway");
  }
  const checkpoint = await checkpointAfter(state, log);
  const size = Number(checkpoint.size);
  const listed = (await api(`/api/v1/users/${encodeURIComponent(me.id)}/keys`)).keys;
  if (listed.length > MAX_LISTED) {
    throw new KeyAlarm(`the gateway lists more key registrations for you than anyone makes (over ${MAX_LISTED})`);
  }
  const hidden = [];
  if (me.keys && !listed.some((r) => r.log_seq === me.keys.log_seq)) {
    hidden.push(me.keys.log_seq); // the directory serves senders a key the listing leaves out
    listed.push(me.keys);
  }
  const accepted = new Set(state.accepted);
  const found = [], pending = [];
  for (const record of listed) {
    const seq = record.log_seq;
    if (!Number.isSafeInteger(seq) || seq < 0 || accepted.has(seq)) continue;
    if (seq >= size) pending.push(seq); // not in a signed checkpoint yet: the next audit proves it
    else found.push(await prove(record, me, log, checkpoint));
  }
  const mine = (f) => keys && f.recipient === keys.recipient && f.signingKey === keys.signingKey;
  const others = found.filter((f) => !mine(f));
  store(me.id, { log: log.fingerprint, size, root: b64(checkpoint.root),
    accepted: [...state.accepted, ...found.filter(mine).map((f) => f.seq)] });
  return { previous: state.size, size, found, unexpected: keys ? others : [], unchecked: keys ? [] : others,
    hidden, pending };
}

const when = (iso) => {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
};

function entry(me, found, onAccept) {
  const item = el("li", { "data-seq": String(found.seq) },
    el("strong", { text: `Log entry ${found.seq}` }), `, registered ${when(found.time)}`, el("br"),
    "Encryption key fingerprint ", el("code", { class: "fingerprint", text: found.fingerprints.recipient }), el("br"),
    "Signing key fingerprint ", el("code", { class: "fingerprint", text: found.fingerprints.signingKey }));
  item.append(el("p", {}, el("button", { type: "button", class: "secondary", text: `I made this (entry ${found.seq})`,
    onclick: () => {
      accept(me.id, found.seq);
      item.replaceChildren(el("p", { text: `Entry ${found.seq} is accepted as yours; it will not be raised again.` }));
      onAccept?.();
    } })));
  return item;
}

const WHAT_TO_DO = "If you did not make it, whoever did can read documents sent to you. Tell your admin now, "
  + "quoting the log entry, and replace your keys on the Keys page (tick \u201cReplace my current keys\u201d), "
  + "or run carebridge keygen and carebridge keys register. If you made it yourself (on another computer, "
  + "with the CLI, or an older key file), choose \u201cI made this\u201d.";

/**
 * The audit's verdict for people: {element, level} with level "alarm" (a key
 * not mine, a registration hidden, or the log refused), "notice" (new
 * registrations this page could not compare), "quiet" or "failed" (the audit
 * could not run: the gateway refused or was not reached; said in a line).
 */
export async function auditVerdict(me, keys = null, { onAccept } = {}) {
  let report;
  try {
    report = await auditKeys(me, keys);
  } catch (error) {
    if (error instanceof KeyAlarm) {
      return { level: "alarm", element: el("section", { class: "key-alarm", role: "alert" },
        el("h2", { text: "The access log does not check out" }),
        el("p", { text: sentence(error.message) }),
        el("p", { text: "The keys this gateway publishes for you and for others cannot be trusted until this is "
          + "explained. Tell your admin now; do not send or open documents until then." })) };
    }
    const why = error instanceof ApiError ? error.detail || error.title : "the gateway could not be reached";
    return { level: "failed", element: el("p", { class: "key-audit-note", role: "status",
      text: sentence(`Your key registrations could not be audited this time: ${why}`) }) };
  }
  const { unexpected, unchecked, hidden } = report;
  if (unexpected.length || hidden.length) {
    const list = el("ul", { class: "key-entries" }, ...unexpected.map((f) => entry(me, f)));
    return { level: "alarm", element: el("section", { class: "key-alarm", role: "alert" },
      el("h2", { text: "A key was registered for you that is not yours" }),
      unexpected.length ? el("p", { text: "The access log holds these key registrations for you, proven in a "
        + "checkpoint signed by the log key, and they are not the keys you opened in this page:" }) : null,
      unexpected.length ? list : null,
      ...hidden.map((seq) => el("p", { text: `Log entry ${seq}: the gateway gives senders a key for you that `
        + "its list of your keys leaves out." })),
      el("p", { class: "what-to-do", text: WHAT_TO_DO })) };
  }
  // Without keys, what this browser's first audit found is the baseline; what the log added since is asked about.
  const added = report.previous ? unchecked.filter((f) => f.seq >= report.previous) : [];
  if (added.length) {
    return { level: "notice", element: el("section", { class: "key-alarm notice", role: "alert" },
      el("h2", { text: "New key registration for you: was it you?" }),
      el("p", { text: "Since this browser last checked, the access log published these keys for you. They are "
        + "proven in the log, but this page could not compare them with your keys: your key file is sealed by "
        + "its passphrase, and it is opened only on the Inbox and Send pages, which compare them." }),
      el("ul", { class: "key-entries" }, ...added.map((f) => entry(me, f))),
      el("p", { class: "what-to-do", text: WHAT_TO_DO })) };
  }
  return { level: "quiet", element: null };
}

/**
 * Audit now and show what needs saying above the page's content (#app); the
 * body's data-keys-audit says the verdict. Never rejects: the page goes on.
 */
export async function auditInPage(me, keys = null) {
  const verdict = await auditVerdict(me, keys).catch(() => ({ level: "failed", element: el("p",
    { class: "key-audit-note", role: "status", text: "Your key registrations could not be audited in this page." }) }));
  document.getElementById("keys-audit")?.remove();
  if (verdict.element) {
    verdict.element.id = "keys-audit";
    document.getElementById("app").before(verdict.element);
  }
  document.body.dataset.keysAudit = verdict.level;
  return verdict;
}
