// The API's refusals in words for people (the same words for every way a sign-in fails).
import { ApiError } from "./session.js";

/** "in 15 minutes (at 08:42)": when a lockout of *seconds* ends. */
export function retryText(seconds, now = new Date()) {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  const at = new Date(now.getTime() + seconds * 1000);
  const clock = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return `in ${minutes} minute${minutes === 1 ? "" : "s"} (at ${clock})`;
}

/** A sentence for a failed sign-in or enrollment call. */
export function refusalText(error) {
  if (!(error instanceof ApiError)) return "The gateway could not be reached. Check your connection and try again.";
  const slug = error.type.replace(/^urn:carebridge:problem:/, "");
  if (error.status === 429) {
    return error.retryAfter ? `Too many failed attempts. Try again ${retryText(error.retryAfter)}.`
      : "Too many failed attempts. Try again later.";
  }
  if (slug === "sign-in-failed") return "The e-mail, password or code was not accepted. Check them and try again.";
  if (slug === "csrf") return "The gateway refused this request as coming from another site. Reload the page.";
  // The API's detail says it for a person ("a password needs at least 12 characters"); else its title.
  if (error.detail) return `${error.detail.charAt(0).toUpperCase()}${error.detail.slice(1)}.`;
  return `${error.title || "The request was refused"}.`;
}
