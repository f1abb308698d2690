// The signed-in browser's door to the API: same-origin requests with the
// session cookie, the CSRF header on every state-changing method, JSON in and
// out, and problem+json answers thrown as ApiError.

const CSRF_HEADER = "X-Carebridge-CSRF";
const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const SIGN_IN = "/signin";

/** A refusal from the API (RFC 9457 problem+json), in the API's words. */
export class ApiError extends Error {
  constructor({ status, type, title, detail, retryAfter }) {
    super(title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.type = type || "about:blank";
    this.title = title || "";
    this.detail = detail || "";
    this.retryAfter = retryAfter ?? null; // seconds, when the API said when to try again
  }
}

function isRaw(body) {
  return typeof body === "string" || body instanceof Blob || body instanceof FormData
    || body instanceof ArrayBuffer || ArrayBuffer.isView(body) || body instanceof URLSearchParams;
}

async function refusal(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch { /* not JSON: the status alone says it */ }
  const header = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  const retryAfter = Number.isFinite(problem.retry_after) ? problem.retry_after
    : Number.isFinite(header) ? header : null;
  return new ApiError({ status: response.status, type: problem.type, title: problem.title,
    detail: problem.detail, retryAfter });
}

/**
 * Call the API at *path* (same origin). *init* is fetch's; a plain object or
 * array body is sent as JSON. Returns the parsed JSON, null for an empty
 * answer, or the Response itself for any other content (a download).
 * Throws ApiError for an answer that is not 2xx.
 */
export async function api(path, init = {}) {
  if (typeof path !== "string" || !path.startsWith("/") || path.startsWith("//")) {
    throw new TypeError("api() takes a same-origin absolute path");
  }
  const method = (init.method || "GET").toUpperCase();
  const headers = new Headers(init.headers || {});
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  let body = init.body;
  if (body !== undefined && body !== null && !isRaw(body)) {
    body = JSON.stringify(body);
    headers.set("Content-Type", "application/json");
  }
  if (STATE_CHANGING.has(method)) headers.set(CSRF_HEADER, "1");
  const response = await fetch(path, { ...init, method, headers, body, credentials: "same-origin",
    cache: "no-store", redirect: "error" });
  if (!response.ok) throw await refusal(response);
  if (response.status === 204 || response.headers.get("Content-Length") === "0") return null;
  const type = response.headers.get("Content-Type") || "";
  // JSON and +json parse; anything else (a download, JSON Lines) is the caller's to read
  return /^application\/(?:[\w.-]+\+)?json\b/.test(type) ? response.json() : response;
}

/** Where sign-in sends the browser back to: this page (its path only; never its fragment or query). */
export function signInUrl(path = window.location.pathname) {
  return `${SIGN_IN}#next=${encodeURIComponent(path)}`;
}

/** The signed-in person (GET /api/v1/me), or null without a session: for pages that work signed out too. */
export async function currentPerson() {
  try {
    return await api("/api/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

/**
 * The signed-in person (GET /api/v1/me). Without a working session the
 * browser goes to sign-in, to come back here after; the promise then never settles.
 */
export async function requireSession() {
  try {
    return await api("/api/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      window.location.replace(signInUrl());
      return new Promise(() => {});
    }
    throw error;
  }
}

/** End this browser's session and go to the sign-in page (also when it had already ended). */
export async function signOut() {
  try {
    await api("/api/v1/auth/signout", { method: "POST" });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) throw error;
  }
  window.location.assign(SIGN_IN);
}
