// The send page (GET /send), part 1: a PDF is chosen or dropped, the project's own
// redaction gate checks it in this page (lib/gate.js: Python in a Worker), and the
// page shows what the CLI's `carebridge inspect` shows: what sanitizing removed and
// the findings (page, rule, masked snippet). Each blocking rule can be overridden
// with a reason; "Clear for sending" asks the CLI's own `gate()` (in the Worker),
// which checks the overrides and the reason as `carebridge send --allow --reason`
// does. The sanitized PDF, the only bytes that would be encrypted, is previewed.
// A clinic's redaction profile (its signature checked here, lib/profile.js) sets each rule
// to block, warn or off, as with the CLI; the profile applied goes on with the file.
// Then (sending.js) recipients, policy, encrypting, signing and uploading, in this page.
// Nothing of the file leaves the page unencrypted: no request carries it or its name.
import { handoffPanel } from "./handoff.js";
import { GateError, gateUrls, openGate } from "./lib/gate.js";
import { ProfileError, clinicProfile } from "./lib/profile.js";
import { currentPerson } from "./lib/session.js";
import { alertBox, el, field, sentence, show, sizeText } from "./lib/ui.js";
import { sendStep } from "./sending.js";

// The reason goes into the signed manifest and the log (gate.py MAX_REASON_LENGTH).
const MAX_REASON_LENGTH = 300;

const root = document.getElementById("app");
const gate = openGate(gateUrls());
let preview = null; // the object URL of the shown sanitized PDF, revoked when replaced

/** The signed-in uploader's clinic profile, verified; null when none (or signed out: sending asks to sign in). */
async function senderProfile() {
  const me = await currentPerson();
  return me?.role === "uploader" ? clinicProfile(me) : null;
}
const profileReady = senderProfile();
profileReady.catch(() => {}); // shown when a file is checked

function chooser() {
  const input = el("input", { type: "file", accept: "application/pdf,.pdf", id: "file" });
  input.addEventListener("change", () => input.files[0] && check(input.files[0]));
  const zone = el("div", { class: "drop", tabindex: "-1" },
    el("p", { text: "Drop a PDF here, or choose one. It is checked in this page; nothing is sent." }),
    field("file", "Treatment summary (PDF)", input));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) check(event.dataTransfer.files[0]);
  });
  return zone;
}

function start() {
  show(root, "Send a treatment summary", chooser(),
    el("p", { class: "note", text: "The redaction gate loads on first use (a few seconds)." }),
    handoffPanel(gate, check)); // a handoff drawn in the page goes on as a chosen file
  gate.load().catch(() => {}); // warm it while the person picks a file; errors show on use
}

async function check(file) {
  show(root, "Checking the file", el("p", { role: "status", text: "The redaction gate is reading the file in this page…" }));
  let profile, result;
  try {
    profile = await profileReady;
  } catch (error) {
    const text = error instanceof ProfileError ? sentence(error.message)
      : "Your clinic's redaction profile could not be read.";
    show(root, "This file cannot be checked", alertBox(`${text} Ask your clinic's admin, or send with the CLI.`));
    return;
  }
  try {
    result = await gate.inspectPdf(new Uint8Array(await file.arrayBuffer()), { profile: profile?.document ?? null });
  } catch (error) {
    const text = error instanceof GateError ? error.message : "the file could not be read";
    show(root, "This file cannot be sent", alertBox(`The redaction gate stopped: ${text}.`), chooser());
    return;
  }
  await report(result, file.name, profile);
}

/** The button that goes on to sending what the gate passed (with the override and profile, if any). */
function onward(result, name, override, profile) {
  return el("button", { type: "button", class: "onward", text: "Continue: recipients and sending",
    onclick: () => sendStep(root, { name, sanitized: result.sanitized, override,
      profile: profile ? { id: profile.id, version: profile.version } : null }) });
}

function profileNote(profile) {
  return el("p", { class: "note profile", text: profile
    ? `Your clinic's redaction profile ${profile.id}, version ${profile.version} (signature checked in this page): `
      + "each rule blocks, warns or is off as it says."
    : "No clinic redaction profile applies (your clinic has none, or you send a spa's report): every rule blocks." });
}

async function report(result, name, profile) {
  const blocking = result.findings.filter((f) => f.action === "block");
  const warnings = result.findings.filter((f) => f.action === "warn");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", result.sanitized));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const removed = result.actions.length
    ? el("ul", {}, ...result.actions.map((a) => el("li", { text: `${a.name}: ${a.count}` })))
    : el("p", { text: "Nothing to remove." });
  const heading = blocking.length ? `${blocking.length} finding(s) would block sending`
    : warnings.length ? "No findings block sending" : "No findings";
  show(root, heading,
    el("p", { class: "summary", text: `PDF, ${result.pages} page(s); sanitized: ${sizeText(result.sanitized.length)}` }),
    profileNote(profile),
    el("h2", { text: "Sanitizing removed" }), removed,
    blocking.length ? findingsTable(blocking) : null,
    warnings.length ? el("h2", { text: `${warnings.length} warning(s): your clinic's profile lets these pass` }) : null,
    warnings.length ? findingsTable(warnings, "warnings") : null,
    blocking.length ? overrides(result, blocking, name, profile)
      : el("div", {}, el("p", { class: "ok", text: "The sanitized file may be sent." }),
        onward(result, name, null, profile)),
    el("h2", { text: "What would be encrypted" }),
    el("p", {}, "The sanitized PDF, SHA-256 ", el("code", { class: "sha256", text: hex })),
    previewFrame(result.sanitized),
    chooser());
}

function findingsTable(findings, kind = "findings") {
  const row = (f) => el("tr", {}, el("td", { text: String(f.page) }), el("td", { text: f.rule }),
    el("td", {}, el("code", { text: f.snippet })));
  return el("table", { class: kind },
    el("thead", {}, el("tr", {}, el("th", { text: "Page" }), el("th", { text: "Rule" }), el("th", { text: "Snippet (masked)" }))),
    el("tbody", {}, ...findings.map(row)));
}

function overrides(result, findings, name, profile) {
  const rules = [...new Set(findings.map((f) => f.rule))].sort();
  const status = el("p", { role: "status" });
  const verdict = el("div", { class: "verdict" });
  const next = el("div", { class: "next" });
  const rows = rules.map((rule) => {
    const box = el("input", { type: "checkbox", id: `allow-${rule}`, "data-rule": rule });
    const reason = el("input", { type: "text", id: `reason-${rule}`, maxlength: String(MAX_REASON_LENGTH),
      placeholder: "why this is not an identifier, or why it may go", disabled: "" });
    box.addEventListener("change", () => { reason.disabled = !box.checked; update(); });
    reason.addEventListener("input", update);
    return { rule, box, reason };
  });
  function update() {
    const open = rows.filter((r) => !r.box.checked || !r.reason.value.trim());
    status.textContent = open.length
      ? `Still blocked by: ${open.map((r) => r.rule).join(", ")}. Override each rule with a reason, or fix the file.`
      : "Every finding is overridden with a reason: the sanitized file may be sent.";
  }
  async function clearForSending() {
    const chosen = rows.filter((r) => r.box.checked);
    // One reason goes into the manifest and the log, as with the CLI's --reason: rule by rule here.
    const reason = chosen.map((r) => `${r.rule}: ${r.reason.value.trim()}`).join("; ");
    let answer;
    try {
      answer = await gate.clear(result, { allow: chosen.map((r) => r.rule), reason: reason || null,
        profile: profile?.document ?? null });
    } catch (error) {
      answer = { ok: false, message: error.message };
    }
    verdict.replaceChildren(answer.ok
      ? el("p", { role: "status", class: "ok", text: "Cleared for sending. Signed into the manifest and logged: "
          + `rules ${answer.override.rules.join(", ")}, reason "${answer.override.reason}".` })
      : alertBox(`Not cleared: ${answer.message}.`));
    next.replaceChildren(...(answer.ok ? [onward(result, name, answer.override, profile)] : []));
  }
  update();
  return el("fieldset", { class: "overrides" }, el("legend", { text: "Override a rule (with a reason)" }),
    ...rows.map((r) => el("div", { class: "override" },
      el("label", { for: r.box.id }, r.box, ` ${r.rule}`), r.reason)), status,
    el("button", { type: "button", onclick: clearForSending, text: "Clear for sending" }), verdict, next);
}

function previewFrame(bytes) {
  if (preview) URL.revokeObjectURL(preview);
  preview = URL.createObjectURL(new Blob([bytes], { type: "application/pdf" }));
  return el("iframe", { class: "preview", src: preview, title: "The sanitized PDF" });
}

start();
