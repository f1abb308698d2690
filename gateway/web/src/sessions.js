// One's sessions (GET /sessions): every browser signed in to this account,
// this one marked; end one, end all the others, or sign out.
import { api, requireSession, signOut } from "./lib/session.js";
import { refusalText } from "./lib/words.js";
import { alertBox, el, show } from "./lib/ui.js";

const root = document.getElementById("app");
const status = el("div", { role: "status", "aria-live": "polite" });

function when(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "unknown";
}

function item(session, reload) {
  const label = session.current ? "This browser" : "Another browser";
  const facts = el("dl", {},
    el("dt", { text: "Signed in" }), el("dd", { text: when(session.created_at) }),
    el("dt", { text: "Last used" }), el("dd", { text: when(session.last_seen_at) }),
    session.address ? el("dt", { text: "Address" }) : null,
    session.address ? el("dd", { text: session.address }) : null,
    el("dt", { text: "Browser" }), el("dd", { class: "agent", text: session.user_agent || "not told" }));
  const end = session.current
    ? el("button", { type: "button", text: "Sign out", onclick: () => signOut() })
    : el("button", { type: "button", text: "End this session",
      "aria-label": `End the session signed in ${when(session.created_at)}`,
      onclick: async (event) => {
        event.currentTarget.disabled = true;
        try {
          await api(`/api/v1/auth/sessions/${encodeURIComponent(session.id)}/revoke`, { method: "POST" });
          status.replaceChildren(el("p", { text: "The session has ended." }));
        } catch (error) {
          status.replaceChildren(alertBox(refusalText(error)));
        }
        await reload();
      } });
  return el("li", { class: session.current ? "session current" : "session", "data-session": session.id },
    el("h2", { text: label }), facts, end);
}

async function load() {
  let listed;
  try {
    listed = await api("/api/v1/auth/sessions");
  } catch (error) {
    if (error.status === 401) return requireSession(); // ended meanwhile: sign in again
    show(root, "Your sessions", alertBox(refusalText(error)));
    return;
  }
  const sessions = [...listed.sessions].sort((a, b) => Number(b.current) - Number(a.current)); // this one first
  const others = sessions.filter((s) => !s.current);
  const everywhere = el("button", { type: "button", class: "secondary", text: "Sign out everywhere else",
    onclick: async () => {
      for (const other of others) {
        try {
          await api(`/api/v1/auth/sessions/${encodeURIComponent(other.id)}/revoke`, { method: "POST" });
        } catch (error) {
          if (error.status !== 404) status.replaceChildren(alertBox(refusalText(error))); // 404: ended already
        }
      }
      status.replaceChildren(el("p", { text: "Every other session has ended." }));
      await load();
    } });
  if (!others.length) everywhere.disabled = true;
  show(root, "Your sessions",
    el("p", { text: `You are signed in on ${sessions.length} browser${sessions.length === 1 ? "" : "s"}.` }),
    el("ul", { class: "sessions" }, ...sessions.map((s) => item(s, load))),
    el("p", {}, everywhere), status);
}

requireSession().then(load);
