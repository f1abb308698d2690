// Encrypting and uploading a document from the page, as `carebridge send` does
// (gateway/client/transfer.py, gateway/server/upload.py): the sanitized bytes and
// the meta object are each an age file to every recipient and the sender; the
// body is multipart/form-data with the parts manifest, policy, meta, content in
// that order, sent with the session cookie and the CSRF header. The gateway makes
// nothing visible until the whole body has arrived and verified, so a cancelled
// or failed upload leaves nothing behind.
import { Encrypter } from "age-encryption";
import { checkHeader } from "./age.js";
import { concat, utf8 } from "./bytes.js";
import { ApiError } from "./session.js";

const CSRF_HEADER = "X-Carebridge-CSRF"; // lib/session.js: the gateway's CSRF check
const UPLOAD_PATH = "/api/v1/documents";
const PQ_PREFIX = "age1pq1";

export class UploadError extends Error {}

/**
 * The age file of *bytes* to *recipients* (age1… strings). Post-quantum and
 * classical recipients never share a file (lib/age.js; the CLI refuses too).
 */
export async function encryptTo(bytes, recipients) {
  if (new Set(recipients.map((r) => r.startsWith(PQ_PREFIX))).size > 1) {
    throw new UploadError("some recipients have post-quantum keys and some do not; one file cannot mix them"
      + " (send them separately)");
  }
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  const sealed = await encrypter.encrypt(bytes);
  checkHeader(sealed); // what we send, the CLI would open
  return sealed;
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** {sha256, size} of a stored age file, as the manifest records it. */
export const digestOf = async (bytes) => ({ sha256: await sha256Hex(bytes), size: bytes.length });

function refusal(xhr) {
  let problem = {};
  try {
    problem = JSON.parse(xhr.responseText);
  } catch { /* not JSON: the status alone says it */ }
  return new ApiError({ status: xhr.status, type: problem.type, title: problem.title, detail: problem.detail });
}

/**
 * The multipart/form-data body of the four parts, in their order, as one byte
 * array: {type, body}. Built here rather than by FormData so the bytes sent are
 * exactly these (and a test can read them back from the browser's request).
 */
export function multipart(parts) {
  const boundary = "carebridge-" + Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0")).join("");
  const pieces = [];
  for (const [name, bytes, type, file] of parts) {
    const disposition = `form-data; name="${name}"${file ? `; filename="${file}"` : ""}`;
    pieces.push(utf8(`--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: ${type}\r\n\r\n`),
      bytes, utf8("\r\n"));
  }
  pieces.push(utf8(`--${boundary}--\r\n`));
  return { type: `multipart/form-data; boundary=${boundary}`, body: concat(...pieces) };
}

/**
 * Start the upload; returns {done, cancel}. *done* resolves to the gateway's answer
 * ({id, expires_at, …}) or rejects with ApiError (a refusal), UploadError (the
 * network, or cancel()). *onProgress(sent, total)* follows the body's bytes.
 */
export function upload({ manifest, policy, meta, content }, onProgress = () => {}) {
  const { type, body } = multipart([["manifest", manifest, "application/json"], ["policy", policy, "application/json"],
    ["meta", meta, "application/octet-stream"], ["content", content, "application/octet-stream", "content.age"]]);
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", UPLOAD_PATH);
    xhr.setRequestHeader("Content-Type", type);
    xhr.setRequestHeader(CSRF_HEADER, "1");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.total));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new UploadError("the gateway's answer was not understood"));
        }
      } else {
        reject(refusal(xhr));
      }
    });
    xhr.addEventListener("abort", () => reject(new UploadError("the upload was cancelled")));
    xhr.addEventListener("error", () => reject(new UploadError("the connection to the gateway failed")));
    xhr.send(body);
  });
  return { done, cancel: () => xhr.abort() };
}
