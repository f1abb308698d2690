// The keyring: a person's keys unlocked in a Worker (keyring.worker.js), for
// every page that decrypts or signs. The secrets never reach this thread and
// never touch localStorage or IndexedDB; lock() (or leaving the page) drops them.
//
//   await unlock({ passphrase });                  // the key file stored on the gateway
//   await unlock({ keyFileText, passphrase });     // or one chosen from disk (text or bytes)
//   isUnlocked(); await publicKeys();              // {recipient, signingKey: "ed25519:…", signer}
//   await decrypt(u8);                             // an age file (binary or armored) -> plaintext
//   await sign(u8);                                // "carebridge/v1/<context>\0…" -> 64-byte signature
//   lock();
//
// create({passphrase, release, postQuantum}) makes new keys in the Worker and
// leaves them unlocked; it answers the sealed key file to store or save.
import { fromUtf8 } from "./bytes.js";
import { ApiError, api } from "./session.js";

export const KEY_FILE_PATH = "/api/v1/me/key-file";
const MAX_KEY_FILE_SIZE = 64 * 1024; // lib/keyfile.js: what a key file can be

export class KeyringError extends Error {
  /** code: "keyfile" (wrong passphrase, not a key file), "refused", "locked" or "failed" */
  constructor(code, message) {
    super(message);
    this.name = "KeyringError";
    this.code = code;
  }
}

let worker = null;
let unlocked = false;
let nextId = 1;
const pending = new Map();

/** The keyring Worker's URL, from the page shell's <meta name="carebridge-keyring">. */
function workerUrl() {
  const meta = document.querySelector('meta[name="carebridge-keyring"]');
  if (!meta) throw new KeyringError("failed", "this gateway does not serve the keyring for the page");
  return meta.content;
}

function start() {
  if (worker) return worker;
  worker = new Worker(workerUrl(), { type: "module", name: "carebridge-keyring" });
  worker.onmessage = ({ data }) => {
    const waiting = pending.get(data.id);
    if (!waiting) return;
    pending.delete(data.id);
    if (data.ok) waiting.resolve(data.value);
    else waiting.reject(new KeyringError(data.error, data.message));
  };
  worker.onerror = (event) => {
    event.preventDefault?.();
    lock(new KeyringError("failed", "the keyring could not run in this page"));
  };
  return worker;
}

function call(op, fields = {}, transfer = []) {
  const w = start();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ id, op, ...fields }, transfer);
  });
}

async function fetchKeyFile() {
  const response = await api(KEY_FILE_PATH, { headers: { Accept: "application/octet-stream" } });
  return response instanceof Response ? new Uint8Array(await response.arrayBuffer()) : new Uint8Array(0);
}

async function storedKeyFile() {
  const bytes = await fetchKeyFile();
  if (bytes.length > MAX_KEY_FILE_SIZE) throw new KeyringError("keyfile", "the stored key file is too large");
  return bytes;
}

/**
 * For a page that offers the stored key file or a file chooser: the stored file's
 * text, or null when the gateway keeps none (404, or 405 from a gateway without
 * the route) or none a key file could be.
 */
export async function storedKeyFileText() {
  let bytes;
  try {
    bytes = await fetchKeyFile();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 405)) return null;
    throw error;
  }
  return bytes.length && bytes.length <= MAX_KEY_FILE_SIZE ? fromUtf8(bytes) : null;
}

/**
 * Unlock a key file in the Worker: *keyFileText* (a string or bytes from disk),
 * or else the one stored on the gateway for the signed-in person. Resolves to
 * publicKeys(); rejects with KeyringError (or the API's ApiError, e.g. 404
 * no-key-file) and leaves the keyring locked.
 */
export async function unlock({ keyFileText = null, passphrase }) {
  const bytes = keyFileText === null ? await storedKeyFile()
    : typeof keyFileText === "string" ? new TextEncoder().encode(keyFileText) : new Uint8Array(keyFileText);
  unlocked = false;
  const keys = await call("unlock", { bytes, passphrase });
  unlocked = true;
  return keys;
}

/** New keys made (and kept unlocked) in the Worker: {recipient, signingKey, signer, sealed}. */
export async function create({ passphrase, release = "", postQuantum = false }) {
  unlocked = false;
  const made = await call("create", { passphrase, release, postQuantum });
  unlocked = true;
  return made;
}

export function isUnlocked() {
  return unlocked;
}

function requireUnlocked() {
  if (!unlocked) throw new KeyringError("locked", "unlock your keys first");
}

/** Plaintext of an age file encrypted to this identity (our CLI's rules apply). */
export async function decrypt(u8) {
  requireUnlocked();
  return call("decrypt", { bytes: u8 });
}

/** Ed25519 signature of a carebridge statement ("carebridge/v1/<context>\0" + message). */
export async function sign(u8) {
  requireUnlocked();
  return call("sign", { bytes: u8 });
}

export async function publicKeys() {
  requireUnlocked();
  return call("publicKeys");
}

/** Drop the keys: the Worker, and everything in it, ends. */
export function lock(reason = new KeyringError("locked", "the keys were locked")) {
  if (worker) worker.terminate();
  worker = null;
  unlocked = false;
  for (const waiting of pending.values()) waiting.reject(reason);
  pending.clear();
}
