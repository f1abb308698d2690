// The compliance officer's page (GET /audit): the access log filtered and paged,
// the latest checkpoint and the log's key to pin, and the bundle `carebridge
// audit export` writes, made by the gateway for the same filters, with how to
// verify it offline. Auditors only: the API refuses everyone else (403), and
// every page of entries and every bundle is itself a log entry.
import { api, ApiError, requireSession } from "./lib/session.js";
import { refusalText } from "./lib/words.js";
import { alertBox, el, field, save, show, sizeText } from "./lib/ui.js";

const PAGE_SIZE = 50; // entries on one page (the API's count=, at most 500)
const TEXT_FILTERS = [ // [query name, label, hint]
  ["org", "Organisation id", "org_…"],
  ["document", "Document id", "doc_…"],
  ["actor", "Actor (user id)", "usr_…"],
  ["action", "Action", "e.g. document.download"],
];
const COLUMNS = ["seq", "time", "action", "outcome", "reason", "actor", "org", "object"];

const root = document.getElementById("app");
const state = { filters: {}, rows: [], atNewest: true, atOldest: false, key: null, showCheckpoint: null };

/** Entries of one page: JSONL from GET /api/v1/audit/entries?count=… */
async function entries(query) {
  const response = await api(`/api/v1/audit/entries?${new URLSearchParams(query)}`,
    { headers: { Accept: "application/x-ndjson" } });
  const text = response ? await response.text() : "";
  return text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

/** The latest signed checkpoint: its note's size and root hash, and when it was signed. */
async function checkpoint() {
  try {
    const response = await api("/api/v1/audit/checkpoint", { headers: { Accept: "text/plain" } });
    const [origin, size, rootHash] = (await response.text()).split("\n");
    return { origin, size: Number(size), rootHash, signedAt: response.headers.get("Last-Modified") };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null; // none signed yet
    throw error;
  }
}

function copyButton(text, what) {
  const said = el("span", { role: "status", class: "copied" });
  const button = el("button", { type: "button", class: "secondary", text: `Copy the ${what}`,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        said.textContent = "Copied.";
      } catch {
        said.textContent = "The browser would not copy it: select the text and copy it yourself.";
      }
    } });
  return el("span", {}, button, " ", said);
}

function checkpointFacts(latest) {
  if (!latest) return el("p", { id: "checkpoint", text: "No checkpoint has been signed yet." });
  return el("dl", { class: "facts", id: "checkpoint" },
    el("dt", { text: "Entries" }), el("dd", { id: "checkpoint-size", text: String(latest.size) }),
    el("dt", { text: "Root hash" }), el("dd", {}, el("code", { id: "checkpoint-root", text: latest.rootHash })),
    el("dt", { text: "Signed" }), el("dd", { text: latest.signedAt
      ? new Date(latest.signedAt).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" }) : "unknown" }));
}

function keySection(log, latest) {
  const facts = el("dl", { class: "facts" },
    el("dt", { text: "Log" }), el("dd", {}, el("code", { text: log.origin })),
    el("dt", { text: "Verifier key" }), el("dd", {}, el("code", { id: "verifier-key", text: log.verifier_key })),
    el("dt", { text: "Fingerprint" }), el("dd", {}, el("code", { id: "key-fingerprint", text: log.fingerprint })));
  const signed = el("div", {}, checkpointFacts(latest));
  state.showCheckpoint = async () => signed.replaceChildren(checkpointFacts(await checkpoint()));
  // Auditors may have one signed now (POST /api/v1/audit/checkpoint); the schedule signs the rest.
  const sign = el("button", { type: "button", class: "secondary", text: "Sign a checkpoint now",
    onclick: async (event) => {
      event.currentTarget.disabled = true;
      try {
        await api("/api/v1/audit/checkpoint", { method: "POST", headers: { Accept: "text/plain" } });
        await state.showCheckpoint();
      } catch (error) {
        signed.replaceChildren(alertBox(refusalText(error)));
      } finally {
        sign.disabled = false;
      }
    } });
  return el("section", { "aria-labelledby": "key-heading" },
    el("h2", { id: "key-heading", text: "The log's key to pin" }),
    el("p", {}, "Compare the fingerprint with the one you were given over a channel you trust (in person, on "
      + "paper, or ", el("code", { text: "carebridge audit pubkey" }), " from the operators) before you rely on it."),
    facts, el("p", {}, copyButton(log.verifier_key, "verifier key")),
    el("h2", { text: "Latest checkpoint" }),
    el("p", { text: "The log's size and root hash, signed with the key above. The gateway signs one on a "
      + "schedule; every bundle comes with one signed just before." }),
    signed, el("p", {}, sign));
}

function filterForm(onApply, onExport) {
  const since = el("input", { type: "datetime-local", step: "1" });
  const until = el("input", { type: "datetime-local", step: "1" });
  const texts = TEXT_FILTERS.map(([name, label, hint]) =>
    [name, el("input", { type: "text", name, maxlength: "200", placeholder: hint, autocomplete: "off" }), label]);
  const outcome = el("select", { name: "outcome" }, el("option", { value: "", text: "any" }),
    el("option", { value: "allow", text: "allowed" }), el("option", { value: "deny", text: "denied" }));
  const read = () => {
    const query = {};
    if (since.value) query.since = new Date(since.value).toISOString();
    if (until.value) query.until = new Date(until.value).toISOString();
    for (const [name, input] of texts) if (input.value.trim()) query[name] = input.value.trim();
    if (outcome.value) query.outcome = outcome.value;
    return query;
  };
  const form = el("form", { class: "filters", "aria-label": "Filter the log",
    onsubmit: (event) => { event.preventDefault(); onApply(read()); } },
  field("filter-since", "From (your time)", since), field("filter-until", "Until (not including)", until),
  ...texts.map(([name, input, label]) => field(`filter-${name}`, label, input)),
  field("filter-outcome", "Outcome", outcome),
  el("p", { class: "actions" }, el("button", { type: "submit", text: "Show entries" }),
    el("button", { type: "button", class: "secondary", id: "export", text: "Export a bundle",
      onclick: (event) => onExport(read(), event.currentTarget) })));
  return form;
}

function table(rows) {
  if (!rows.length) return el("p", { id: "no-entries", text: "No entries match these filters." });
  const head = el("tr", {}, ...COLUMNS.map((name) => el("th", { scope: "col", text: name })));
  const body = rows.map((entry) => el("tr", { "data-seq": String(entry.seq) },
    ...COLUMNS.map((name) => el("td", { class: `col-${name} ${name === "outcome" ? entry.outcome : ""}`,
      text: entry[name] ?? "" }))));
  return el("div", { class: "scroll" }, el("table", { class: "log" }, el("thead", {}, head), el("tbody", {}, ...body)));
}

function verifySection(key) {
  const command = `carebridge audit verify carebridge-audit-SIZE.zip --key ${key}`;
  return el("section", { "aria-labelledby": "verify-heading", id: "verify-help" },
    el("h2", { id: "verify-heading", text: "Verifying a bundle offline" }),
    el("p", {}, "A bundle is the ZIP file ", el("code", { text: "carebridge audit export -o" }), " writes; the "
      + "export button above asks the gateway for the same file, with the filters you set. Check it on any "
      + "machine with the carebridge CLI, without a network, an account or settings:"),
    el("pre", {}, el("code", { id: "verify-command", text: command })),
    el("ol", {},
      el("li", {}, el("code", { text: "--key" }), " is the verifier key above, pinned: the bundle must be "
        + "signed by it, so a bundle from any other log, or signed by another key, fails (UNTRUSTED)."),
      el("li", { text: "OK means the bundle's checkpoint is signed by that key, and every entry in it is in the "
        + "log the checkpoint commits to (an inclusion proof per entry, or every leaf hash for the whole log)." }),
      el("li", { text: "With only a time range (or no filter), the bundle is proven complete: no entry of the "
        + "range was left out, added, repeated or moved. With an organisation, document, actor, action or "
        + "outcome it is a selection: each entry is proven to be in the log and to match, but that none is "
        + "missing rests on the gateway; the verdict says which." }),
      el("li", { text: "FAILED names what is wrong (MALFORMED, UNTRUSTED, TAMPERED, FORK or INCONCLUSIVE) and "
        + "the first entry to blame." }),
      el("li", {}, "Keep a checkpoint (", el("code", { text: "carebridge audit checkpoint -o FILE" }), "); a "
        + "later ", el("code", { text: "carebridge audit export --previous FILE" }), " then also proves the log "
        + "only grew since, with no history rewritten.")));
}

async function loadPage(where) {
  // where: {order: "desc", end} for older (or the newest, without end), {order: "asc", start} for newer
  const query = { ...state.filters, count: PAGE_SIZE, ...where };
  let rows = await entries(query);
  if (!rows.length && where.end !== undefined) { // the last page was exactly full: it was the oldest
    state.atOldest = true;
    return state.rows;
  }
  if (where.order === "asc") {
    if (rows.length < PAGE_SIZE) return loadPage({ order: "desc" }); // near the head: the newest page
    rows = rows.reverse();
  }
  state.rows = rows;
  state.atNewest = where.order === "desc" && where.end === undefined;
  state.atOldest = where.order === "desc" && rows.length < PAGE_SIZE;
  return rows;
}

function render(parts) {
  const { list, pager, status } = parts;
  list.replaceChildren(table(state.rows));
  const newer = el("button", { type: "button", class: "secondary", id: "newer", text: "← Newer",
    onclick: () => move(parts, { order: "asc", start: state.rows[0].seq + 1 }) });
  const older = el("button", { type: "button", class: "secondary", id: "older", text: "Older →",
    onclick: () => move(parts, { order: "desc", end: state.rows[state.rows.length - 1].seq }) });
  newer.disabled = state.atNewest || !state.rows.length;
  older.disabled = state.atOldest || !state.rows.length;
  const count = state.rows.length;
  const shown = count ? `${count} entr${count === 1 ? "y" : "ies"}, seq ${state.rows[0].seq} down to `
    + `${state.rows[count - 1].seq}, newest first.` : "";
  pager.replaceChildren(newer, " ", older, " ", el("span", { id: "page-range", text: shown }));
  status.replaceChildren();
}

async function move(parts, where) {
  try {
    await loadPage(where);
    render(parts);
  } catch (error) {
    parts.status.replaceChildren(alertBox(refusalText(error)));
  }
}

async function exportBundle(parts, filters, button) {
  button.disabled = true;
  parts.exported.replaceChildren(el("p", { text: "The gateway is signing a checkpoint and writing the bundle…" }));
  try {
    const response = await api(`/api/v1/audit/bundle?${new URLSearchParams(filters)}`,
      { method: "POST", headers: { Accept: "application/zip" } });
    const name = /filename="([\w.-]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1]
      || "carebridge-audit.zip";
    const blob = await response.blob();
    save(blob, name, "application/zip");
    const what = Object.keys(filters).length ? "the entries matching your filters" : "the whole log";
    parts.exported.replaceChildren(el("div", { id: "exported", role: "status" },
      el("p", { text: `Saved ${name} (${sizeText(blob.size)}): ${what}, with the proofs. Verify it offline:` }),
      el("pre", {}, el("code", { text: `carebridge audit verify ${name} --key ${state.key}` }))));
    await state.showCheckpoint().catch(() => {}); // the one the bundle carries; the bundle is saved either way  } catch (error) {
    parts.exported.replaceChildren(alertBox(refusalText(error)));
  } finally {
    button.disabled = false;
  }
}

async function main() {
  await requireSession();
  let log, latest;
  try {
    [log, latest] = await Promise.all([api("/api/v1/audit/verifier"), checkpoint()]);
    state.key = log.verifier_key;
    await loadPage({ order: "desc" });
  } catch (error) {
    const text = error instanceof ApiError && error.status === 403
      ? "This page is for auditors: your account cannot read the access log." : refusalText(error);
    show(root, "The access log", alertBox(text));
    return;
  }
  const parts = { list: el("div", { id: "entries" }), pager: el("p", { class: "pager" }),
    status: el("div", { role: "status", "aria-live": "polite" }), exported: el("div", { "aria-live": "polite" }) };
  const form = filterForm(async (filters) => {
    state.filters = filters;
    await move(parts, { order: "desc" });
  }, (filters, button) => exportBundle(parts, filters, button));
  root.classList.add("wide"); // the table needs the width; the text keeps its measure
  show(root, "The access log",
    el("p", { text: "Every action on this gateway, allowed or denied, as the log signed it. Opaque ids only: "
      + "no names, addresses or file names. Your reading of it is logged too." }),
    keySection(log, latest),
    el("section", { "aria-labelledby": "entries-heading" },
      el("h2", { id: "entries-heading", text: "Entries" }), form, parts.exported, parts.status, parts.list,
      parts.pager),
    verifySection(log.verifier_key));
  render(parts);
}

main();
