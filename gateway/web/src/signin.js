// The sign-in page (GET /signin): e-mail, password and, when the account has
// one, the code from an authenticator app. After sign-in the browser goes to
// the path in the fragment (#next=/inbox, same origin only) or home, once the
// keys audit (lib/keyaudit.js) is quiet; its alarm stops here until read.
import { auditVerdict } from "./lib/keyaudit.js";
import { api } from "./lib/session.js";
import { nextPath } from "./lib/next.js";
import { refusalText } from "./lib/words.js";
import { alertBox, el, field, show } from "./lib/ui.js";

const root = document.getElementById("app");

function form() {
  const email = el("input", { type: "email", autocomplete: "username", required: "", maxlength: "320" });
  const password = el("input", { type: "password", autocomplete: "current-password", required: "",
    maxlength: "1024" });
  const code = el("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code",
    pattern: "[0-9 ]*", maxlength: "10", "aria-describedby": "code-help" });
  const button = el("button", { type: "submit", text: "Sign in" });
  const status = el("div", { role: "status", "aria-live": "polite" });
  const signin = el("form", { novalidate: "" }, field("email", "E-mail", email), field("password", "Password", password),
    field("code", "Code from your authenticator app", code),
    el("p", { id: "code-help", class: "help", text: "Six digits. Leave empty if you did not set up a second factor." }),
    button, status);
  signin.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!email.value.trim() || !password.value) {
      status.replaceChildren(alertBox("Enter your e-mail and your password."));
      return;
    }
    button.disabled = true;
    status.replaceChildren(el("p", { text: "Signing in…" }));
    const totp = code.value.replace(/\s+/g, "");
    try {
      await api("/api/v1/auth/signin", { method: "POST",
        body: { email: email.value.trim(), password: password.value, ...(totp ? { totp_code: totp } : {}) } });
    } catch (error) {
      password.value = "";
      code.value = "";
      button.disabled = false;
      status.replaceChildren(alertBox(refusalText(error)));
      password.focus();
      return;
    }
    const next = nextPath(window.location.hash) ?? "/";
    status.replaceChildren(el("p", { text: "Checking the keys the access log holds for you…" }));
    const me = await api("/api/v1/me").catch(() => null);
    const verdict = me ? await auditVerdict(me) : { level: "failed" };
    if (verdict.level === "alarm" || verdict.level === "notice") {
      document.body.dataset.keysAudit = verdict.level;
      show(root, "Check your keys", verdict.element, el("p", {}, el("a", { class: "button", href: next, text: "Continue" })));
      return;
    }
    window.location.assign(next);
  });
  show(root, "Sign in", signin);
  email.focus();
}

form();
