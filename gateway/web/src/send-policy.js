// The send page's policy fields: every option `carebridge send` has (expiry, not before,
// downloads per recipient and in total, networks, purposes of use, links with their
// lifetime and uses, retention, legal hold), each with the server's ceiling shown next to
// it (`ceilings` of GET /api/v1/me, the PolicyLimits the upload is checked against) and
// refused here in words above it. The gateway refuses the same values on its own.
import { el, field } from "./lib/ui.js";

const HOUR = 3600, DAY = 86400;
// policies/terms.py Purpose: why a recipient downloads (each download must then name one).
const PURPOSES = [["treatment", "treatment"], ["care_coordination", "coordination of care"],
  ["patient_request", "the patient's request"]];
const MAX_NETWORK_CHARS = 43; // "ffff:…/128": the longest CIDR text
// A network as the CLI's --network takes it; the gateway checks it fully (host bits, ranges).
const CIDR = /^(?:\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2}|[0-9a-f:]*:[0-9a-f:.]*\/\d{1,3})$/i;

export class PolicyError extends Error {} // a refusal in words, for the form's status

/** "30 days", "12 hours", "90 seconds": a span as the ceilings are shown. */
export function spanText(seconds) {
  if (seconds % DAY === 0) return `${seconds / DAY} day${seconds === DAY ? "" : "s"}`;
  if (seconds % HOUR === 0) return `${seconds / HOUR} hour${seconds === HOUR ? "" : "s"}`;
  return `${seconds} seconds`;
}

function number(min, max) {
  return el("input", { type: "number", min: String(min), max: String(max), step: "1", inputmode: "numeric" });
}

/** A span typed as a number of hours or days: {input, unit, seconds(what, low, high)}. */
function span(id, max) {
  const input = number(1, Math.ceil(max / HOUR));
  const unit = el("select", { "aria-label": "unit", id: `${id}-unit` },
    el("option", { value: String(DAY), text: "days" }), el("option", { value: String(HOUR), text: "hours" }));
  return { input, unit, seconds: () => {
    if (!input.value.trim()) return null;
    const n = Number(input.value);
    return Number.isInteger(n) && n >= 1 ? n * Number(unit.value) : NaN;
  } };
}

const ceilingNote = (text) => el("span", { class: "help ceiling", text });

function within(value, what, low, high, shown) {
  if (value === null) return null;
  if (Number.isInteger(value) && value > high) {
    throw new PolicyError(`${what}: at most ${shown} (the gateway's ceiling)`);
  }
  if (!Number.isInteger(value) || value < low) throw new PolicyError(`${what}: a whole number, ${low} or more`);
  return value;
}

/**
 * The policy fieldset for *ceilings*; returns {fieldset, options()} where options() reads the
 * fields into lib/manifest-make.js policyJson's options, or throws PolicyError in words.
 */
export function policyPart(ceilings) {
  const c = ceilings;
  const expires = span("expires", c.max_lifetime);
  const notBefore = span("not-before", c.max_lifetime);
  const perRecipient = number(1, c.max_downloads);
  const total = number(1, c.max_total_downloads);
  const networks = el("input", { type: "text", autocomplete: "off", placeholder: "10.1.0.0/16, 192.0.2.0/24",
    maxlength: String(c.max_networks * (MAX_NETWORK_CHARS + 2)) });
  const purposes = PURPOSES.map(([value, text]) => el("label", { class: "purpose" },
    el("input", { type: "checkbox", name: "purpose", value }), ` ${text} `));
  const links = el("select", {}, el("option", { value: "", text: "no links" }),
    el("option", { value: "sign_in", text: "links that need the recipient's sign-in" }),
    c.allow_bearer_links ? el("option", { value: "bearer", text: "links anyone holding one may use" }) : null);
  const linkLifetime = span("link-lifetime", c.link_max_lifetime);
  const linkUses = number(1, c.link_max_uses);
  const retention = number(0, Math.floor(c.max_retention / DAY));
  const hold = el("input", { type: "checkbox", id: "legal-hold" });
  const withUnit = (id, label, s, note) => el("p", { class: "field span" }, el("label", { for: id, text: label }),
    Object.assign(s.input, { id }), " ", s.unit, " ", ceilingNote(note));
  const withNote = (id, label, input, note) => {
    const row = field(id, label, input);
    row.append(" ", ceilingNote(note));
    return row;
  };
  const fieldset = el("fieldset", { class: "policy" }, el("legend", { text: "Access" }),
    withUnit("expires", "Expires after (empty: the gateway's default)", expires,
      `default ${spanText(c.default_lifetime)}, at most ${spanText(c.max_lifetime)}`),
    withUnit("not-before", "Nobody may read it until (empty: at once)", notBefore, "after sending; before the expiry"),
    withNote("max-downloads", "Downloads per recipient (empty: no limit)", perRecipient, `at most ${c.max_downloads}`),
    withNote("max-total-downloads", "Downloads in total (empty: no limit)", total, `at most ${c.max_total_downloads}`),
    withNote("networks", "Only from these networks (CIDR, comma-separated; empty: any)", networks,
      `at most ${c.max_networks}`),
    field("links", "Links (issued later from the outbox or the CLI)", links),
    withUnit("link-lifetime", "A link lasts (empty: 1 day)", linkLifetime, `at most ${spanText(c.link_max_lifetime)}`),
    withNote("link-uses", "Downloads per link (empty: 1)", linkUses, `at most ${c.link_max_uses}`),
    withNote("retention", "Keep the ciphertext after expiry or revocation, days (empty: the gateway's default)",
      retention, `default ${spanText(c.default_retention)}, at most ${spanText(c.max_retention)}`),
    el("fieldset", { class: "purposes" }, el("legend", { text: "Purposes of use (none checked: any)" }), ...purposes),
    el("p", { class: "field" }, el("label", { for: "legal-hold" }, hold,
      " Legal hold: never purged until an operator's admin releases it")),
    el("p", { class: "note", text: "The ceilings are the gateway's: it refuses a policy above them too." }));

  function options() {
    const expiresIn = within(expires.seconds(), "expiry", 1, c.max_lifetime, spanText(c.max_lifetime));
    const notBeforeIn = within(notBefore.seconds(), "not before", 1, c.max_lifetime, spanText(c.max_lifetime));
    if (notBeforeIn !== null && notBeforeIn >= (expiresIn ?? c.default_lifetime)) {
      throw new PolicyError("not before: must be before the expiry");
    }
    const cidrs = networks.value.split(/[\s,]+/).filter(Boolean);
    if (cidrs.length > c.max_networks) throw new PolicyError(`networks: ${c.max_networks} at most`);
    const bad = cidrs.find((n) => n.length > MAX_NETWORK_CHARS || !CIDR.test(n));
    if (bad !== undefined) {
      throw new PolicyError(`networks: "${bad.slice(0, MAX_NETWORK_CHARS)}" is not a CIDR network such as 10.1.0.0/16`);
    }
    const count = (input) => (input.value.trim() ? Number(input.value) : null);
    const mode = links.value || null;
    const lifetime = within(linkLifetime.seconds(), "a link's lifetime", 1, c.link_max_lifetime,
      spanText(c.link_max_lifetime));
    const uses = within(count(linkUses), "downloads per link", 1, c.link_max_uses, String(c.link_max_uses));
    if (!mode && (lifetime !== null || uses !== null)) {
      throw new PolicyError("a link's lifetime and uses need links: choose a kind of link");
    }
    const retentionDays = within(count(retention), "retention", 0, Math.floor(c.max_retention / DAY),
      spanText(c.max_retention));
    return {
      expiresInSeconds: expiresIn, notBeforeSeconds: notBeforeIn,
      maxDownloads: within(count(perRecipient), "downloads per recipient", 1, c.max_downloads, String(c.max_downloads)),
      maxTotalDownloads: within(count(total), "downloads in total", 1, c.max_total_downloads,
        String(c.max_total_downloads)),
      networks: cidrs, links: mode, linkLifetimeSeconds: lifetime, linkUses: uses,
      retentionSeconds: retentionDays === null ? null : retentionDays * DAY, legalHold: hold.checked,
      purposes: purposes.map((p) => p.firstChild).filter((box) => box.checked).map((box) => box.value),
    };
  }
  return { fieldset, options };
}
