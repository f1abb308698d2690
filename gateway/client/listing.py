"""``inbox`` and ``outbox`` as a person reads them: who, what, until when, what is left.

The gateway lists ids, times, sizes and state; the file name and the note
are inside each document's ``meta`` ciphertext, so they are decrypted here,
with your key file, when the listing carries ``meta``. Fields a gateway does
not send yet (sender's e-mail and org, downloads left, status, per-recipient
downloads) are shown when present and left out when not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timezone

from ...crypto import age
from ...crypto.errors import CryptoError

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
MAX_NOTE_SHOWN = 120  # characters of a note in the text listing; --json has it whole


def human_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``12 MiB``: binary units, three significant figures at most."""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{size} B"
    return f"{value:.1f} {_UNITS[unit]}" if value < 10 else f"{value:.0f} {_UNITS[unit]}"


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def status(row: dict, now: datetime) -> str:
    """The gateway's ``status`` when given; else revoked, expired or available, from the row's times."""
    if row.get("status"):
        return row["status"].replace("_", " ")
    if row.get("revoked"):
        return "revoked"
    expires = _time(row.get("expires_at"))
    if expires is not None and expires <= now:
        return "expired"
    return "available"


def open_meta(rows: list[dict], identity) -> dict[str, dict]:
    """Each row's decrypted meta (name, content_type, size, note) by document id, where *identity* opens it."""
    opened: dict[str, dict] = {}
    for row in rows:
        if not row.get("meta"):
            continue
        try:
            opened[row["id"]] = json.loads(age.decrypt_bytes(base64.b64decode(row["meta"]), [identity]))
        except (CryptoError, ValueError):
            continue  # a link-key or passphrase document: not encrypted to your key
    return opened


def _sender(row: dict) -> str:
    sender = row.get("sender") or {}
    who = sender.get("email") or row.get("sender_id", "?")
    org = sender.get("org_name")
    return f"{who} ({org})" if org else who


def _name(row: dict, meta: dict[str, dict], hint: str) -> str:
    if row["id"] in meta:
        return meta[row["id"]].get("name", "?")
    return hint if row.get("meta") else "(file name: not listed by this gateway)"


def _note(row: dict, meta: dict[str, dict]) -> list[str]:
    note = meta.get(row["id"], {}).get("note", "")
    if not note:
        return []
    flat = " ".join(note.split())
    return [f"    note: {flat[:MAX_NOTE_SHOWN]}{'…' if len(flat) > MAX_NOTE_SHOWN else ''}"]


def _expiry(row: dict, now: datetime) -> str:
    expires = _time(row.get("expires_at"))
    if expires is None:
        return "no expiry"
    left = expires - now
    if left.total_seconds() <= 0:
        return f"expired {row['expires_at']}"
    days, hours = left.days, left.seconds // 3600
    return f"expires {row['expires_at']} (in {f'{days}d ' if days else ''}{hours}h)"


def inbox_lines(page: dict, meta: dict[str, dict], *, now: datetime, hint: str) -> list[str]:
    """Three lines at most per document: what and its state; from whom and until when; the note."""
    lines = []
    for row in page["documents"]:
        left = row.get("downloads_left")
        details = [f"from {_sender(row)}", f"sent {row['created_at']}", _expiry(row, now)]
        if left is not None:
            details.append(f"{left} download(s) left")
        lines += [f"{row['id']}  {status(row, now)}  {_name(row, meta, hint)}  {human_size(row['size'])}",
                  "    " + " · ".join(details), *_note(row, meta)]
    return lines


def _recipient(entry: dict) -> str:
    who = entry.get("email") or entry.get("id", "?")
    if entry.get("revoked"):
        return f"{who}: access revoked"
    count = entry.get("downloads", 0)
    if not count:
        return f"{who}: not downloaded"
    first = entry.get("first_downloaded_at")
    return f"{who}: downloaded {count}×{f', first {first}' if first else ''}"


def outbox_lines(page: dict, meta: dict[str, dict], *, now: datetime, hint: str) -> list[str]:
    """Per document: what and its state; until when; per recipient, whether and when they downloaded."""
    lines = []
    for row in page["documents"]:
        lines += [f"{row['id']}  {status(row, now)}  {_name(row, meta, hint)}  {human_size(row['size'])}",
                  f"    sent {row['created_at']} · {_expiry(row, now)}"]
        lines += [f"    {_recipient(entry)}" for entry in row.get("recipients", [])]
        lines += _note(row, meta)
    return lines


def render(box: str, page: dict, meta: dict[str, dict], *, hint: str,
           now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> str:
    """The text listing of *box* (``inbox`` or ``outbox``), with the cursor for the next page."""
    lines = (inbox_lines if box == "inbox" else outbox_lines)(page, meta, now=now(), hint=hint)
    if page.get("next_cursor"):
        lines.append(f"more: --cursor {page['next_cursor']}")
    return "\n".join(lines) or f"{box} is empty"


def with_meta(page: dict, meta: dict[str, dict]) -> dict:
    """The page for ``--json``: every field as the gateway sent it, plus ``file`` where meta was opened."""
    return {**page, "documents": [{**row, **({"file": meta[row["id"]]} if row["id"] in meta else {})}
                                  for row in page["documents"]]}
