"""``carebridge audit disclosures``: an accounting of disclosures, built from the log, with its proofs.

For a compliance officer (auditor role). Per referral case (``--case ID``)
or per clinic and period (``--org ID --since T --until T``), every
disclosure of a document: who received which document and when it was
downloaded, acknowledged, revoked — in the form HIPAA's accounting of
disclosures asks for (date, recipient, what, purpose), one row per event.

Nothing here trusts the gateway's word. The rows come only from log entries
in audit bundles (:mod:`carebridge.crypto.audit_bundle`) written into the
output folder and verified with the officer's pinned log key before a row is
made: one bundle of the case's own trail (its ``case.document`` entries name
its documents) or of the clinic's uploads in the period, and one bundle per
document. Anyone can check the folder again offline with ``carebridge audit
verify --key KEY`` on each bundle. The log holds ids, not names: recipients
are user and organisation ids (the operator's records name them); the log does
not hold a purpose either: a case's documents are disclosed for its referral
(or, back from the spa, as its follow-up report), others "not recorded".
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from ...crypto.audit_bundle import ENTRIES, verify_bundle
from ._terminal import CLIError, atomic_output
from .api import Client

MAX_DOCUMENTS = 500  # documents in one report (--max-documents): one bundle each
COLUMNS = ("date", "recipient", "recipient_org", "document", "event", "purpose", "sender", "sender_org",
           "log_seq", "bundle")
# Allowed actions on a document that are part of its disclosure story, and their words.
EVENTS = {"document.upload": "sent", "document.download": "downloaded", "link.claim": "downloaded by link",
          "document.acknowledge": "acknowledged", "document.revoke": "revoked for everyone",
          "document.amend.revoke_recipient": "revoked for one recipient"}


@dataclass(frozen=True, slots=True)
class Row:
    date: str
    recipient: str | None
    recipient_org: str | None
    document: str
    event: str
    purpose: str
    sender: str | None
    sender_org: str | None
    log_seq: int
    bundle: str


async def disclosures(args, api: Client, key: str) -> int:
    """Write the report and its bundles into ``args.output``, a new folder that appears whole."""
    final = Path(args.output)
    if final.exists():
        raise CLIError(f"{final} exists: the report goes into a new folder")
    try:  # built beside it and renamed into place whole: a failed run leaves nothing
        out = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    except OSError as exc:
        raise CLIError(f"cannot make a folder beside {final}: {exc.strerror}") from None
    try:
        summary = await _report(args, api, key, out)
        os.rename(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    print(json.dumps({"folder": str(final), **summary}) if args.json else
          f"{summary['rows']} events ({summary['disclosures']} disclosures) of {summary['documents']} documents in"
          f" {final}/disclosures.csv, each from a bundle there that verifies with `carebridge audit verify --key`")
    return 0


async def _report(args, api: Client, key: str, out: Path) -> dict:
    async with api:
        if args.case:
            trail = await _bundle(api, out / "case.zip", {"document": args.case}, key)
            opened = [e for e in trail if e["action"] == "case.open" and e["outcome"] == "allow"]
            if not opened:
                raise CLIError(f"the log has no opening of case {args.case}")
            clinic_org = opened[0]["org"]
            docs = [e["reason"] for e in trail if e["action"] == "case.document" and e["outcome"] == "allow"]
            window = (None, None)
        else:
            filters = {"org": args.org, "action": "document.upload", "outcome": "allow"}
            filters.update({k: getattr(args, k) for k in ("since", "until") if getattr(args, k)})
            uploads = await _bundle(api, out / "uploads.zip", filters, key)
            docs, clinic_org = [e["object"] for e in uploads], args.org
            window = (args.since, args.until)
        docs = list(dict.fromkeys(docs))
        if len(docs) > args.max_documents:
            raise CLIError(f"{len(docs)} documents: more than --max-documents {args.max_documents}; narrow the period")
        rows: list[Row] = []
        for doc in docs:
            name = f"{doc}.zip"
            entries = await _bundle(api, out / name, {"document": doc}, key)
            rows += _rows(entries, doc, name, case=args.case, clinic_org=clinic_org, window=window)
    rows.sort(key=lambda r: (r.date, r.log_seq))
    with atomic_output(str(out / "disclosures.csv"), mode=0o600) as handle:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([getattr(r, c) for c in COLUMNS] for r in rows)
        handle.write(text.getvalue().encode())
    report = {"case": args.case, "org": args.org, "since": args.since, "until": args.until,
              "documents": docs, "bundles": sorted(p.name for p in out.glob("*.zip")),
              "verifier_key": key, "disclosures": [asdict(r) for r in rows]}
    with atomic_output(str(out / "disclosures.json"), mode=0o600) as handle:
        handle.write(json.dumps(report, indent=2, sort_keys=True).encode())
    return {"documents": len(docs), "rows": len(rows), "disclosures": sum(r.event != "sent" for r in rows)}


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CLIError(f"not an RFC 3339 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise CLIError(f"a time needs its zone (Z or +HH:MM): {text[:40]!r}")
    return moment


async def _bundle(api: Client, path: Path, filters: dict, key: str) -> list[dict]:
    """Export a selection bundle to *path*, verify it with the pinned *key*, return its entries."""
    from .audit import _export_bundle

    spec = SimpleNamespace(output=str(path), previous=None, start=None, end=None)
    await _export_bundle(api, spec, dict(filters), None)
    with open(path, "rb") as handle:
        verdict = await asyncio.to_thread(verify_bundle, handle, verifier_key=key)
    if not verdict.ok:
        raise CLIError(f"{path.name} does not verify with the pinned key: {verdict.message}")
    with zipfile.ZipFile(path) as zf:
        return [json.loads(line) for line in zf.read(ENTRIES).splitlines()]


def _rows(entries: list[dict], doc: str, bundle: str, *, case: str | None, clinic_org: str | None,
          window: tuple[str | None, str | None]) -> list[Row]:
    sent = next((e for e in entries if e["action"] == "document.upload" and e["outcome"] == "allow"), None)
    sender, sender_org = (sent["actor"], sent["org"]) if sent else (None, None)
    if case is None:
        purpose = "not recorded in the log"
    elif sender_org is not None and sender_org != clinic_org:
        purpose = f"follow-up report back to the referring clinic (case {case})"
    else:
        purpose = f"referral for esthetician care (case {case})"
    since, until = (_moment(t) if t else None for t in window)
    rows = []
    for entry in entries:
        event = EVENTS.get(entry["action"])
        if event is None or entry["outcome"] != "allow" or entry["object"] != doc:
            continue
        moment = _moment(entry["time"])
        if (since and moment < since) or (until and moment >= until):
            continue
        if event.startswith("downloaded") and entry["actor"] == sender:
            continue  # the sender's own copy is no disclosure
        who = (None, None) if event == "sent" else (entry["actor"], entry["org"])
        rows.append(Row(entry["time"], who[0], who[1], doc, event, purpose, sender, sender_org, entry["seq"],
                        bundle))
    return rows
