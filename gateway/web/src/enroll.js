// The enrollment page (GET /enroll#ce1.<secret>): the one-time link's secret
// is read from the fragment (never sent in a URL, and taken out of the address
// bar at once), checked by the API, and used to set a password and the TOTP
// second factor (a QR code drawn in the page, and the secret as text to type).
import { api } from "./lib/session.js";
import { qrCode } from "./lib/qr.js";
import { refusalText } from "./lib/words.js";
import { alertBox, el, field, show } from "./lib/ui.js";

const TOKEN = /^#(ce1\.[A-Za-z0-9_-]{43})$/;
const root = document.getElementById("app");
const policy = document.getElementById("password-policy");
const MIN_PASSWORD_LENGTH = Number(policy?.dataset.minLength) || 12; // the server's rule, from the shell

function groups(secret) {
  return secret.replace(/(.{4})(?=.)/g, "$1 "); // JBSW Y3DP …: easier to type into a phone
}

function refused(error) {
  const text = refusalText(error);
  show(root, "This enrollment link cannot be used", alertBox(text),
    text.includes("administrator") ? null : el("p", { text: "Ask your administrator for a new enrollment link." }));
}

async function start() {
  const match = TOKEN.exec(window.location.hash);
  history.replaceState(null, "", window.location.pathname); // the secret leaves the address bar and history
  if (!match) {
    show(root, "This enrollment link cannot be used",
      alertBox("The link is incomplete. Open the whole link from your enrollment e-mail, or ask your "
        + "administrator for a new one."));
    return;
  }
  const token = match[1];
  try {
    ask(token, await api("/api/v1/auth/enrollment", { method: "POST", body: { token } }));
  } catch (error) {
    refused(error);
  }
}

function secondFactor(offer, wanted) {
  const code = el("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "10",
    pattern: "[0-9 ]*" });
  const section = el("fieldset", { class: "totp" }, el("legend", { text: "Second factor (authenticator app)" }),
    el("p", { text: "Scan this code with your authenticator app, or type the key below into it." }),
    qrCode(offer.totp_uri, "QR code for your authenticator app"),
    el("p", {}, el("span", { text: "Key: " }), el("code", { id: "totp-secret", text: groups(offer.totp_secret) })),
    field("totp-code", "Code shown by the app", code));
  let toggle = null;
  if (!offer.totp_required) {
    const box = el("input", { type: "checkbox", id: "use-totp" });
    box.checked = wanted;
    box.addEventListener("change", () => { section.hidden = !box.checked; });
    section.hidden = !wanted;
    toggle = el("p", { class: "check" }, box,
      el("label", { for: "use-totp", text: " Add a second factor (recommended; your organisation does not require it)" }));
  }
  return { code, section, toggle, wanted: () => offer.totp_required || (toggle?.querySelector("input").checked) };
}

function ask(token, offer) {
  const password = el("input", { type: "password", autocomplete: "new-password", required: "",
    "aria-describedby": "password-rule", maxlength: "1024" });
  const again = el("input", { type: "password", autocomplete: "new-password", required: "", maxlength: "1024" });
  const totp = secondFactor(offer, offer.totp_required);
  const button = el("button", { type: "submit", text: "Finish setting up" });
  const status = el("div", { role: "status", "aria-live": "polite" });
  const form = el("form", { novalidate: "" },
    el("input", { type: "email", autocomplete: "username", value: offer.email, hidden: "", readonly: "" }),
    field("password", "New password", password),
    el("p", { id: "password-rule", class: "help",
      text: `At least ${MIN_PASSWORD_LENGTH} characters; a few words make a good one.` }),
    field("password-again", "The same password again", again), totp.toggle, totp.section, button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = totp.code.value.replace(/\s+/g, "");
    const fault = password.value.length < MIN_PASSWORD_LENGTH ? `Use at least ${MIN_PASSWORD_LENGTH} characters.`
      : password.value !== again.value ? "The two passwords differ."
      : totp.wanted() && !/^\d{6}$/.test(code) ? "Enter the six-digit code your authenticator app shows." : null;
    if (fault) {
      status.replaceChildren(alertBox(fault));
      return;
    }
    button.disabled = true;
    status.replaceChildren(el("p", { text: "Setting up your account…" }));
    try {
      await api("/api/v1/auth/enrollment/complete", { method: "POST",
        body: { token, password: password.value, ...(totp.wanted() ? { totp_code: code } : {}) } });
      done(offer);
    } catch (error) {
      button.disabled = false;
      status.replaceChildren(alertBox(refusalText(error)));
    }
  });
  const role = offer.totp_required ? "Your role needs a second factor: an authenticator app on your phone."
    : "Your organisation leaves the second factor to you.";
  show(root, "Set up your account", el("p", {}, el("span", { text: "Account: " }), el("strong", { text: offer.email })),
    el("p", { text: role }), form);
}

function done(offer) {
  show(root, "Your account is ready",
    el("p", { text: `Sign in as ${offer.email}. Then make your keys: they are made in your browser and never `
      + "leave it unprotected." }),
    el("p", {}, el("a", { class: "button", href: "/signin#next=%2Fkeys%2Fnew", text: "Sign in and set up your keys" })),
    el("p", {}, el("a", { href: "/signin", text: "Sign in and go home" })));
}

start();
