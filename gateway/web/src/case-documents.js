// The case pages, part 4: what a person does with a document under a case, as the CLI does it:
// download it (manifest and sender's key checked, decrypted here), acknowledge it (a receipt
// signed in the keyring Worker over the manifest verified here) and, for its sender, verify
// its receipts (each recipient's key proven in the access log).
import { fromBase64, fromUtf8, sha256Hex } from "./lib/bytes.js";
import { readStatement, receiptBody, toSign, wire } from "./lib/caseformat.js";
import * as keyring from "./lib/keyring.js";
import { checkManifest } from "./lib/manifest.js";
import { checkUserKeys } from "./lib/recipients.js";
import { api } from "./lib/session.js";
import { safeName } from "./lib/unlock.js";
import { el, save, sizeText } from "./lib/ui.js";
import { Stop, b64, emailOf, registered, when } from "./case-shared.js";

const MAX_IN_PAGE_BYTES = 256 * 1024 * 1024; // inbox.js: larger documents are the CLI's
const documentPath = (id) => `/api/v1/documents/${encodeURIComponent(id)}`;

/** The document's manifest verified here (signature, our key, meta) and its sender's key proven in the log. */
async function verifiedDocument(ctx, c, docId) {
  const info = await api(documentPath(docId));
  const manifest = await checkManifest({ ...info, document_id: info.id }, ctx.keys.recipient);
  if (manifest.sender?.user_id !== info.sender_id) throw new Stop("the manifest names another sender than the gateway does");
  const key = await registered(ctx, info.sender_id, manifest.sender.signing_key);
  if (!key) throw new Stop("the manifest is signed by a key its sender never registered");
  await checkUserKeys({ id: info.sender_id, email: emailOf(c, info.sender_id), keys: key }, ctx.log);
  return { info, manifest, wire: fromBase64(info.manifest) };
}

export async function download(ctx, c, docId, status) {
  status.replaceChildren(el("p", { text: "Checking the sender's signature and key, downloading and decrypting…" }));
  const { info, manifest } = await verifiedDocument(ctx, c, docId);
  if (manifest.content.size > MAX_IN_PAGE_BYTES) throw new Stop("this document is too large for the browser: fetch it with the CLI");
  const meta = JSON.parse(fromUtf8(await keyring.decrypt(fromBase64(info.meta))));
  const answer = await api(`${documentPath(docId)}/content`, { headers: { Accept: "application/octet-stream" } });
  const sealed = new Uint8Array(await answer.arrayBuffer());
  if (sealed.length !== manifest.content.size || (await sha256Hex(sealed)) !== manifest.content.sha256) {
    throw new Stop("the file the gateway sent does not match the sender's manifest");
  }
  const plain = await keyring.decrypt(sealed);
  if ((await sha256Hex(plain)) !== meta.sha256) throw new Stop("the decrypted file does not match its metadata");
  save(plain, safeName(meta.name), meta.content_type);
  status.replaceChildren(el("p", { class: "saved", text: `Saved ${safeName(meta.name)} (${sizeText(plain.length)}) to your downloads, decrypted in this page.` }));
}

/** Your receipt (crypto/receipt.py), signed in the Worker over the manifest verified here now. */
export async function acknowledge(ctx, c, docId) {
  const { wire: manifestWire } = await verifiedDocument(ctx, c, docId);
  const body = receiptBody({ documentId: docId, manifestSha256: await sha256Hex(manifestWire), userId: ctx.me.id,
    verifyKey: ctx.keys.signingKey });
  const receipt = wire("receipt", body, await keyring.sign(toSign("receipt", body)));
  await api(`${documentPath(docId)}/receipts`, { method: "POST", body: { receipt: b64(receipt) } });
}

/** The receipts of a document you sent, each checked as `carebridge verify-receipt` does. */
async function verifyReceipts(ctx, c, docId) {
  const info = await api(documentPath(docId));
  if (info.sender_id !== ctx.me.id) throw new Stop("you did not send this document");
  const manifest = await checkManifest({ ...info, document_id: info.id }, ctx.keys.recipient);
  const digest = await sha256Hex(fromBase64(info.manifest));
  const recipients = new Set(manifest.recipients.map((r) => r.user_id).filter((u) => u !== ctx.me.id));
  const checked = [];
  for (const listed of (await api(`${documentPath(docId)}/receipts`)).receipts) {
    const receipt = await readStatement("receipt", fromBase64(listed.receipt));
    const signer = emailOf(c, receipt.user_id);
    if (receipt.document_id !== docId || receipt.manifest_sha256 !== digest) {
      throw new Stop(`${signer}: the receipt is for another document or manifest`);
    }
    if (!recipients.has(receipt.user_id)) throw new Stop(`${signer}: not a recipient of this document`);
    const key = await registered(ctx, receipt.user_id, receipt.verify_key);
    if (!key) throw new Stop(`${signer}: the receipt is signed by a key they never registered`);
    const published = await checkUserKeys({ id: receipt.user_id, email: signer, keys: key }, ctx.log);
    checked.push({ ...receipt, signer, published });
  }
  return checked;
}

export async function showReceipts(ctx, c, docId, status) {
  status.replaceChildren(el("p", { text: "Verifying the receipts…" }));
  const checked = await verifyReceipts(ctx, c, docId);
  status.replaceChildren(checked.length
    ? el("ul", { class: "receipts", "data-document": docId }, ...checked.map((r) => el("li", { "data-user": r.user_id },
      `Receipt of ${r.signer}, signed ${when(r.time)}: the signature checks out over the manifest you signed `
      + `(SHA-256 ${r.manifest_sha256.slice(0, 16)}…), with a key proven in the access log (entry ${r.published.seq}, `
      + `checkpoint of ${r.published.size} entries).`)))
    : el("p", { class: "receipts", text: "No receipts yet: nobody has acknowledged this document." }));
}
