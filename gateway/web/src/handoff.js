// The send page's handoff form (#16 item 5): a treatment summary filled in as a form built from
// the template (the built-in gateway/client/templates/handoff-1.json, or a clinic's own version),
// checked and drawn into a clean PDF in this page by the CLI's own gateway/client/handoff.py (in
// the gate's Worker, lib/gate.js): the same fields give the bytes `carebridge handoff render`
// writes. The PDF then goes on as a chosen file does (the gate, the preview, encrypting, signing,
// sending). The client block (name, contact, reason) is never drawn: handoffClient() hands it to
// whoever opens a case with it. Nothing typed here leaves the page unencrypted.
import { sha256Hex } from "./lib/bytes.js";
import { alertBox, el, field, sizeText } from "./lib/ui.js";

export const HANDOFF_NAME = "treatment-summary.pdf"; // the CLI's name for it (send --handoff); it travels encrypted
const MAX_TEMPLATE_BYTES = 64 * 1024; // handoff.py MAX_FILE_BYTES
const CLIENT_LABELS = { client_name: "Client's name", contact: "Client's contact", reason: "Reason for the referral" };

let client = {}; // the client block of the last form drawn

/** The client block of the last handoff drawn in this page (filled fields only): for a case header, never the PDF. */
export function handoffClient() {
  return { ...client };
}

/** The panel under the file chooser; *onPdf(file)* gets the drawn PDF as a File, to check and send. */
export function handoffPanel(gate, onPdf) {
  const body = el("div", { class: "handoff-form" });
  const own = el("input", { type: "file", accept: "application/json,.json" });
  own.addEventListener("change", async () => {
    const file = own.files[0];
    if (!file) return;
    if (file.size > MAX_TEMPLATE_BYTES) body.replaceChildren(alertBox("This template is larger than 64 KiB."));
    else await open(await file.text());
  });
  async function open(templateText) {
    body.replaceChildren(el("p", { role: "status", text: "Loading the form (its renderer loads on first use)…" }));
    let answer;
    try {
      answer = await gate.handoffTemplate(templateText);
    } catch (error) {
      answer = { ok: false, message: error.message };
    }
    body.replaceChildren(answer.ok ? form(gate, answer, templateText, onPdf)
      : alertBox(`This template cannot be used: ${answer.message}.`));
  }
  return el("section", { class: "handoff" },
    el("h2", { text: "Or fill in a handoff summary" }),
    el("p", { text: "The fields are drawn into a plain PDF in this page (nothing hidden can travel in it), "
      + "then checked and sent like a chosen file." }),
    el("button", { type: "button", text: "Fill in a handoff summary", onclick: () => open(null) }),
    field("handoff-template", "Or your clinic's own template (JSON)", own), body);
}

function form(gate, spec, templateText, onPdf) {
  const { template } = spec;
  const inputs = template.fields.map((f) => summaryInput(f, spec.max_items));
  const clients = spec.client_fields.map((name) => textInput(`handoff-client-${name}`,
    `${CLIENT_LABELS[name] || name} (at most ${spec.max_client_chars} characters)`, false));
  const outcome = el("div", { class: "handoff-outcome" });
  const values = () => ({
    template: template.id, version: template.version,
    client: Object.fromEntries(spec.client_fields.map((name, i) => [name, clients[i].value()]).filter(([, v]) => v)),
    summary: Object.fromEntries(inputs.map((f) => [f.name, f.value()]).filter(([, v]) => v !== null)),
  });
  const submit = el("button", { type: "submit", text: "Draw the summary" });
  async function draw() {
    for (const f of inputs) f.mark(null);
    outcome.replaceChildren(el("p", { role: "status", text: "Drawing the summary in this page…" }));
    const filled = values();
    let drawn;
    submit.disabled = true; // one drawing at a time: the Worker answers one question at a time
    try {
      drawn = await gate.renderHandoff(JSON.stringify(filled), { template: templateText });
    } catch (error) {
      drawn = { ok: false, message: error.message, field: null };
    } finally {
      submit.disabled = false;
    }
    if (!drawn.ok) {
      const named = inputs.find((f) => f.name === drawn.field);
      const box = alertBox(`Not drawn: ${drawn.message}.`);
      if (named) named.mark(box);
      outcome.replaceChildren(named ? el("p", { role: "status", text: `Not drawn: see ${named.label}.` }) : box);
      return;
    }
    client = filled.client;
    const file = new File([drawn.pdf], HANDOFF_NAME, { type: "application/pdf" });
    outcome.replaceChildren(
      el("p", { class: "ok" }, `Drawn in this page: ${HANDOFF_NAME}, ${sizeText(file.size)}, SHA-256 `,
        el("code", { class: "handoff-sha256", text: await sha256Hex(drawn.pdf) })),
      el("button", { type: "button", class: "onward", text: "Check it and continue", onclick: () => onPdf(file) }));
  }
  return el("form", { class: "handoff", onsubmit: (event) => { event.preventDefault(); draw(); } },
    el("h3", { text: `${template.title} (template ${template.id} v${template.version})` }),
    ...inputs.map((f) => f.node),
    el("fieldset", {}, el("legend", { text: "The client: for the case header, never drawn into the PDF" }),
      ...clients.map((c) => c.node)),
    submit, outcome);
}

/** One summary field: {name, label, node, value() (null when empty), mark(alert or null)}. */
function summaryInput(spec, maxItems) {
  const need = spec.required ? "required" : "optional";
  const id = `handoff-${spec.name}`;
  let made;
  if (spec.kind === "text") {
    made = textInput(id, `${spec.label} (${need}, at most ${spec.max_chars} characters)`, spec.max_chars > 200);
  } else if (spec.kind === "list") {
    made = listInput(id, `${spec.label} (${need}, one per line, at most ${spec.max_chars} characters each)`);
  } else {
    made = datedInput(id, spec, need, maxItems);
  }
  const slot = el("div", { class: "handoff-error" });
  const node = el("div", { class: "handoff-field" }, made.node, slot);
  return { name: spec.name, label: spec.label, node, value: made.value,
    mark(box) {
      if (box) made.target.setAttribute("aria-invalid", "true");
      else made.target.removeAttribute("aria-invalid");
      slot.replaceChildren(...(box ? [box] : []));
      if (box) (made.target.querySelector("input") || made.target).focus();
    } };
}

function textInput(id, label, long) {
  const input = long ? el("textarea", { rows: "4" }) : el("input", { type: "text" });
  return { node: field(id, label, input), target: input, value: () => input.value || null };
}

function listInput(id, label) {
  const input = el("textarea", { rows: "3" });
  const value = () => {
    const lines = input.value.split("\n").filter((line) => line.trim());
    return lines.length ? lines : null;
  };
  return { node: field(id, label, input), target: input, value };
}

/** Dated entries: a date (YYYY-MM-DD) and what, one row each, rows added up to the CLI's limit. */
function datedInput(id, spec, need, maxItems) {
  const rows = [];
  const list = el("div", { class: "dated" });
  const more = el("button", { type: "button", class: "secondary", text: "Add a row", onclick: () => add() });
  function add() {
    const n = rows.length + 1;
    const when = el("input", { type: "date", id: `${id}-${n}-date` });
    const what = el("input", { type: "text", id: `${id}-${n}-what` });
    rows.push({ when, what });
    list.append(el("div", { class: "dated-row" },
      el("label", { for: when.id, text: `Date ${n}` }), when, el("label", { for: what.id, text: `What ${n}` }), what));
    more.disabled = rows.length >= maxItems;
  }
  add();
  const value = () => {
    const filled = rows.filter((r) => r.when.value || r.what.value).map((r) => ({ date: r.when.value, what: r.what.value }));
    return filled.length ? filled : null;
  };
  const node = el("fieldset", { id },
    el("legend", { text: `${spec.label} (${need}, at most ${spec.max_chars} characters each)` }), list, more);
  return { node, target: node, value };
}
