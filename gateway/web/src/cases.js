// Referral cases (GET /cases, one case at /cases#<id>), as `carebridge case …`
// does them (gateway/client/cases.py): the list with its filters (case-list.js); a clinic
// person opens a case (case-open.js); one case (case-view.js): its header decrypted in the
// keyring Worker once the opener's signed statement checks out with a key they registered,
// the clinic's follow-up date and close, the documents under it downloaded, acknowledged and
// their receipts verified (case-documents.js), and its notes (case-notes.js). People and
// organisations are shown by e-mail and name from the case's directory (case-shared.js).
// Requests carry ciphertext, signed statements and ids: never a name, a contact,
// a reason, a note's text, a file name, the passphrase or the key file.
// This module unlocks the key file and routes between the views (ctx.go, so that they need
// not import each other).
import { auditInPage } from "./lib/keyaudit.js";
import * as keyring from "./lib/keyring.js";
import { logKey } from "./lib/recipients.js";
import { requireSession } from "./lib/session.js";
import { askToUnlock } from "./lib/unlock.js";
import { alertBox, el, show } from "./lib/ui.js";
import { showList } from "./case-list.js";
import { openForm } from "./case-open.js";
import { Stop, logLine, refusalBox, root } from "./case-shared.js";
import { showCase } from "./case-view.js";

/** Unlock the key file (the stored one, else one chosen) in the Worker; it must be the registered key. */
function unlock(ctx, stored) {
  return askToUnlock({ stored, refusalBox,
    place: (form) => show(root, "Unlock your cases", el("p", { text: "A case's client details and notes are encrypted "
      + "to its people: they are opened in this page with your key, which never leaves it." }), logLine(ctx), form),
    accept: (mine) => {
      if (mine.recipient !== ctx.me.keys.age_recipient || mine.signingKey !== ctx.me.keys.verify_key) {
        keyring.lock();
        throw new Stop("this key file is not your registered key: cases open only with it");
      }
    } });
}

function route(ctx) {
  const id = decodeURIComponent(window.location.hash.slice(1));
  if (id) showCase(ctx, id);
  else showList(ctx);
}

async function start() {
  const me = await requireSession();
  if (me.role !== "uploader" && me.role !== "recipient") {
    show(root, "Referral cases", alertBox("Referral cases are for a clinic's senders and a spa's recipients."));
    return;
  }
  if (!me.keys) {
    show(root, "Referral cases", alertBox("You have not registered keys yet: set them up on the Keys page."));
    return;
  }
  const ctx = { me, log: await logKey(), histories: new Map(), views: 0 };
  ctx.go = { list: (filter) => showList(ctx, filter), open: () => openForm(ctx) };
  ctx.keys = await unlock(ctx, await keyring.storedKeyFileText());
  auditInPage(me, ctx.keys); // the keys the log holds for me, compared with these (as /inbox and /send)
  window.addEventListener("hashchange", () => route(ctx));
  route(ctx);
}

start().catch((error) => show(root, "Referral cases", refusalBox(error)));
