// The case pages, part 1: the list of your cases (GET /api/v1/cases), with its filters.
import { api } from "./lib/session.js";
import { el, show } from "./lib/ui.js";
import { STATE_WORDS, begin, current, day, isClinic, logLine, orgName, overdue, refusalBox, root,
  when } from "./case-shared.js";

const FILTERS = [["open", "Open", "state=open&state=delivered&state=acknowledged&state=follow_up_due"],
  ["overdue", "Overdue", "overdue=1"], ["week", "Due this week", "due_within=7"], ["closed", "Closed", "state=closed"],
  ["all", "All", ""]];
const PAGE_SIZE = 50; // cases a listing call asks for
const MAX_LISTED = 500; // cases this page lists at most; the CLI pages through them all

async function listCases(query) {
  const cases = [];
  let cursor = null;
  do {
    const page = await api(`/api/v1/cases?${query}${query ? "&" : ""}limit=${PAGE_SIZE}`
      + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
    cases.push(...page.cases);
    cursor = page.next_cursor;
  } while (cursor && cases.length < MAX_LISTED);
  return cases;
}

function caseRow(ctx, c) {
  const mine = isClinic(ctx, c) ? "clinic" : "spa";
  return el("tr", { "data-case": c.id },
    el("th", { scope: "row", "data-label": "Case" }, el("a", { href: `#${c.id}`, text: c.ref })),
    el("td", { "data-label": "Parties" }, `${orgName(c, c.clinic_org_id)} → ${orgName(c, c.spa_org_id)}`,
      el("span", { class: "org", text: ` (you: the ${mine}; ${c.people.length} people)` })),
    el("td", { "data-label": "State" }, el("span", { class: "status", text: STATE_WORDS[c.state] ?? c.state }),
      overdue(c)),
    el("td", { "data-label": "Follow-up" }, day(c.follow_up_at)),
    el("td", { "data-label": "Documents" }, String(c.documents.length)),
    el("td", { "data-label": "Changed" }, when(c.updated_at)));
}

/** The list under *filter* (one of FILTERS' keys; the last one chosen by default). */
export async function showList(ctx, filter = ctx.filter ?? "open") {
  const view = begin(ctx);
  ctx.filter = filter;
  const chosen = FILTERS.find(([key]) => key === filter) ?? FILTERS[0];
  const tabs = el("p", { class: "filters", role: "group", "aria-label": "Show" }, ...FILTERS.map(([key, label]) =>
    el("button", { type: "button", class: key === filter ? "" : "secondary", "aria-pressed": String(key === filter),
      text: label, onclick: () => showList(ctx, key) })));
  const opener = ctx.me.role === "uploader"
    ? el("p", {}, el("button", { type: "button", text: "Open a case", onclick: () => ctx.go.open() })) : null;
  show(root, "Referral cases", opener, tabs, el("p", { role: "status", text: "Loading your cases…" }));
  let cases;
  try {
    cases = await listCases(chosen[2]);
  } catch (error) {
    if (current(ctx, view)) show(root, "Referral cases", opener, tabs, refusalBox(error));
    return;
  }
  if (!current(ctx, view)) return;
  const head = el("tr", {}, ...["Case", "Parties", "State", "Follow-up", "Documents", "Changed"]
    .map((text) => el("th", { scope: "col", text })));
  const table = cases.length
    ? el("table", { class: "cases" }, el("caption", { text: `${cases.length} case${cases.length === 1 ? "" : "s"}: ${chosen[1].toLowerCase()}` }),
      el("thead", {}, head), el("tbody", {}, ...cases.map((c) => caseRow(ctx, c))))
    : el("p", { class: "empty", text: "No cases here." });
  show(root, "Referral cases", opener, tabs, table, logLine(ctx));
}
