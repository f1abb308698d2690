// Where to go after sign-in: a path given in the fragment (#next=/inbox),
// accepted only when it stays on this origin. Never a query string: a link
// token in it would reach the server's access log.

const MAX_NEXT_LENGTH = 2048; // characters: longer is no path of this app

/** The same-origin absolute path in *fragment* ("#next=..."), or null when there is none or it is unsafe. */
export function nextPath(fragment, origin = window.location.origin) {
  const match = /^#?next=(.*)$/s.exec(fragment || "");
  if (!match || match[1].length > MAX_NEXT_LENGTH) return null;
  let raw;
  try {
    raw = decodeURIComponent(match[1]);
  } catch {
    return null;
  }
  // Only "/x...": not "//host", not "/\host" (browsers read "\" as "/"), no control characters.
  if (!raw.startsWith("/") || raw.startsWith("//") || /[\\\u0000-\u001f\u007f]/.test(raw)) return null;
  let url;
  try {
    url = new URL(raw, origin);
  } catch {
    return null;
  }
  if (url.origin !== origin || url.pathname === "/signin") return null;
  return url.pathname + url.hash; // the query is dropped; a fragment stays in the browser
}
