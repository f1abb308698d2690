// Who a document goes to, found and checked in the page as `carebridge send --to`
// does (gateway/client/transfer.py resolve_recipients, transparency.py): an e-mail
// address or "org:NAME" (a whole spa) is looked up in the directory; only recipient
// users count, each needs registered keys, and each key must be shown to be in the
// access log (its registration, its log entry, the entry's inclusion in a checkpoint
// signed by the log key) before anything is encrypted to it.
import { signingKeyFingerprint } from "./fingerprint.js";
import { ApiError, api } from "./session.js";
import { LogError, checkPublished, parseVerifierKey } from "./tlog.js";

export const ORG_PREFIX = "org:";
const MAX_QUERY_CHARS = 320; // gateway/server/directory.py: printable text of at most 320 characters

const PICKS_PAGE = 50; // people per page of the picker (the gateway answers at most 200)

export class RecipientError extends Error {}

/** The log's key, the pin every proof is checked under: {name, keyId, publicKey, origin, fingerprint}. */
export async function logKey() {
  const served = await api("/api/v1/audit/verifier");
  const verifier = await parseVerifierKey(served.verifier_key);
  return { ...verifier, origin: served.origin, fingerprint: await signingKeyFingerprint(verifier.publicKey) };
}

/** Check *user*'s active keys are published in the log; returns {seq, size}. Throws RecipientError. */
export async function checkUserKeys(user, log) {
  const keys = user.keys;
  let proof;
  try {
    const answer = await api(`/api/v1/audit/proof/inclusion?index=${encodeURIComponent(keys.log_seq)}`,
      { headers: { Accept: "text/plain" } });
    proof = new Uint8Array(await answer.arrayBuffer());
  } catch (error) {
    throw new RecipientError(`the key of ${user.email} is not proven to be in the log (${error.detail || error.message})`);
  }
  try {
    return await checkPublished(keys, user.id, proof, log, log.origin);
  } catch (error) {
    if (error instanceof LogError) throw new RecipientError(`the key of ${user.email}: ${error.message}`);
    throw error;
  }
}

/**
 * The recipient users for one entry (an e-mail address or org:NAME), each with
 * `published` ({seq, size}) once its key is checked against *log*, and the org
 * id when the entry was an org (else null): {users, org}. Throws
 * RecipientError when nobody is found or a key is missing or unproven (the CLI's refusals,
 * worded to start a sentence).
 */
export async function lookUp(entry, log) {
  const name = entry.trim();
  const isOrg = name.startsWith(ORG_PREFIX);
  const value = isOrg ? name.slice(ORG_PREFIX.length).trim() : name;
  if (!value || value.length > MAX_QUERY_CHARS || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new RecipientError("give an e-mail address, or org: and the spa's name");
  }
  const query = new URLSearchParams(isOrg ? { org: value } : { email: value });
  let listed;
  try {
    listed = (await api(`/api/v1/directory?${query}`)).users.filter((u) => u.role === "recipient");
  } catch (error) {
    // The directory answers 404 for someone it does not show this sender (unknown, or no referral).
    if (error instanceof ApiError && error.status === 404) listed = [];
    else throw error;
  }
  if (!listed.length) throw new RecipientError(`no recipient found for ${name}`);
  const users = [];
  for (const user of listed) {
    if (!user.keys) throw new RecipientError(`no keys registered yet for ${user.email}`);
    users.push({ ...user, published: await checkUserKeys(user, log) });
  }
  return { users, org: isOrg ? listed[0].org_id : null };
}

/**
 * One page of whom the sender's clinic may send to (GET /api/v1/directory/recipients): {spas
 * [{id, name}], users [{id, email, org_id, has_keys}], next (pass as *after*) or null}. A pick
 * is only a name: it is looked up and its key checked with lookUp() like a typed one.
 */
export async function choices(after = null) {
  const query = new URLSearchParams({ limit: String(PICKS_PAGE), ...(after ? { after } : {}) });
  return api(`/api/v1/directory/recipients?${query}`);
}

/**
 * The policy's "spa" (transfer.py resolve_recipients): the org id when the org:NAME
 * entries named exactly one org and every recipient belongs to it; else null.
 */
export function spaOf(users, orgs) {
  const [only] = orgs;
  return orgs.size === 1 && users.every((u) => u.org_id === only) ? only : null;
}
