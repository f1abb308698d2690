"""Referral cases: what the clinic person who opens a case declares, signed.

A case statement is the canonical JSON of::

    {"case_id": ID, "clinic_org": ID, "header_sha256": HEX, "people": [ID, …],
     "spa_org": ID, "time": "YYYY-MM-DDTHH:MM:SSZ", "user_id": ID,
     "verify_key": "ed25519:…", "version": 1}

signed by the opener (``user_id``) under
:data:`~carebridge.crypto.signing.CASE_CONTEXT`; wire form
``{"case": {...}, "signature": B64}`` (see :mod:`.statement`). ``people`` are
the users on both sides who may read the case header (sorted, no repeats,
the opener among them); ``header_sha256`` is the SHA-256 of the **encrypted**
case header: an age file, to those people's keys, whose plaintext
(:func:`header_json`) holds what the server must never see — the client's
name and contact details and the referral's reason. The gateway keeps only
the case's pseudonymous reference, the parties and these bytes.

A **note** on a case (a question, an answer, a report in a few lines) is the
same pair: an age file to the case's people, whose plaintext is
:func:`note_json`, and the author's signed statement ``{"note": {"case_id",
"body_sha256", "time", "user_id", "verify_key", "version"}, "signature"}``
under :data:`~carebridge.crypto.signing.CASE_NOTE_CONTEXT`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from . import statement
from .canonical import canonical_json, parse_canonical_json
from .errors import CanonicalJSONError, SignatureError
from .signing import CASE_CONTEXT, CASE_NOTE_CONTEXT, SigningKey, VerifyKey

KIND = "case"
VERSION = 1
MAX_CASE_BYTES = 16 * 1024
MAX_PEOPLE = 50
MAX_HEADER_FIELD = 2000  # characters of one plaintext header field
HEADER_FIELDS = ("client_name", "contact", "reason")
_FIELDS = ("case_id", "clinic_org", "header_sha256", "people", "spa_org", "time", "user_id", "verify_key",
           "version")
CASE_ID = re.compile(r"case_[A-Za-z0-9_-]{22,60}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class CaseStatement:
    case_id: str
    clinic_org: str
    spa_org: str
    people: tuple[str, ...]
    header_sha256: str
    user_id: str
    verify_key: VerifyKey
    time: datetime


def sign_case(*, case_id: str, clinic_org: str, spa_org: str, people: list[str], header_sha256: str,
              user_id: str, key: SigningKey, now: datetime) -> bytes:
    body = {"case_id": case_id, "clinic_org": clinic_org, "header_sha256": header_sha256,
            "people": sorted(set(people)), "spa_org": spa_org, "time": statement.utc_text(now),
            "user_id": user_id, "verify_key": key.public.encode(), "version": VERSION}
    return statement.sign(KIND, body, key, CASE_CONTEXT)


def read_case(data: bytes) -> CaseStatement:
    """Parse a case statement and check its signature with the key it names.

    Whether that key is the opener's registered key is for the caller to check.
    Raises :class:`SignatureError` naming what is wrong.
    """
    body, signature = statement.read(KIND, data, _FIELDS, version=VERSION, max_size=MAX_CASE_BYTES)
    if not isinstance(body["case_id"], str) or not CASE_ID.fullmatch(body["case_id"]):
        raise SignatureError("case: case_id is not a case id")
    for name in ("clinic_org", "spa_org", "user_id"):
        if not isinstance(body[name], str) or not _ID.fullmatch(body[name]):
            raise SignatureError(f"case: {name} is not an id")
    people = body["people"]
    if (not isinstance(people, list) or not 1 <= len(people) <= MAX_PEOPLE
            or not all(isinstance(p, str) and _ID.fullmatch(p) for p in people)):
        raise SignatureError(f"case: people is a list of 1 to {MAX_PEOPLE} user ids")
    if people != sorted(set(people)):
        raise SignatureError("case: people are not sorted without repeats")
    if body["user_id"] not in people:
        raise SignatureError("case: the opener is not among the people")
    if not isinstance(body["header_sha256"], str) or not _SHA256.fullmatch(body["header_sha256"]):
        raise SignatureError("case: header_sha256 is not a lower-case SHA-256")
    key = statement.parse_key(KIND, body["verify_key"])
    moment = statement.parse_time(KIND, body["time"])
    statement.check(KIND, body, signature, key, CASE_CONTEXT)
    return CaseStatement(body["case_id"], body["clinic_org"], body["spa_org"], tuple(people),
                         body["header_sha256"], body["user_id"], key, moment)


def header_json(*, case_id: str, client_name: str = "", contact: str = "", reason: str = "") -> bytes:
    """The case header's plaintext (encrypted by the client before it leaves)."""
    fields = {"client_name": client_name, "contact": contact, "reason": reason}
    for name, value in fields.items():
        if len(value) > MAX_HEADER_FIELD:
            raise ValueError(f"the case header's {name} is longer than {MAX_HEADER_FIELD} characters")
    return canonical_json({"case_id": case_id, **fields, "version": VERSION})


def read_header(data: bytes, case_id: str) -> dict[str, str]:
    """The decrypted header's fields; raises SignatureError if it is not this case's header."""
    try:
        header = parse_canonical_json(data, max_size=MAX_CASE_BYTES)
    except CanonicalJSONError as exc:
        raise SignatureError(f"case header: {exc}") from None
    if (not isinstance(header, dict) or set(header) != {"case_id", *HEADER_FIELDS, "version"}
            or header["version"] != VERSION or not all(isinstance(header[f], str) for f in HEADER_FIELDS)):
        raise SignatureError("case header: not a version 1 case header")
    if header["case_id"] != case_id:
        raise SignatureError("case header: it belongs to another case")
    return {f: header[f] for f in HEADER_FIELDS}


MAX_NOTE_CHARS = 4000
_NOTE_FIELDS = ("body_sha256", "case_id", "time", "user_id", "verify_key", "version")


@dataclass(frozen=True, slots=True)
class NoteStatement:
    case_id: str
    body_sha256: str
    user_id: str
    verify_key: VerifyKey
    time: datetime


def sign_note(*, case_id: str, body_sha256: str, user_id: str, key: SigningKey, now: datetime) -> bytes:
    body = {"body_sha256": body_sha256, "case_id": case_id, "time": statement.utc_text(now), "user_id": user_id,
            "verify_key": key.public.encode(), "version": VERSION}
    return statement.sign("note", body, key, CASE_NOTE_CONTEXT)


def read_note(data: bytes) -> NoteStatement:
    """Parse a note statement and check its signature with the key it names; SignatureError if not."""
    body, signature = statement.read("note", data, _NOTE_FIELDS, version=VERSION, max_size=MAX_CASE_BYTES)
    if not isinstance(body["case_id"], str) or not CASE_ID.fullmatch(body["case_id"]):
        raise SignatureError("note: case_id is not a case id")
    if not isinstance(body["user_id"], str) or not _ID.fullmatch(body["user_id"]):
        raise SignatureError("note: user_id is not an id")
    if not isinstance(body["body_sha256"], str) or not _SHA256.fullmatch(body["body_sha256"]):
        raise SignatureError("note: body_sha256 is not a lower-case SHA-256")
    key = statement.parse_key("note", body["verify_key"])
    moment = statement.parse_time("note", body["time"])
    statement.check("note", body, signature, key, CASE_NOTE_CONTEXT)
    return NoteStatement(body["case_id"], body["body_sha256"], body["user_id"], key, moment)


def note_json(*, case_id: str, text: str) -> bytes:
    """A note's plaintext (encrypted by its author before it leaves)."""
    if not text.strip() or len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a note is 1 to {MAX_NOTE_CHARS} characters")
    return canonical_json({"case_id": case_id, "text": text, "version": VERSION})


def read_note_text(data: bytes, case_id: str) -> str:
    try:
        note = parse_canonical_json(data, max_size=MAX_CASE_BYTES)
    except CanonicalJSONError as exc:
        raise SignatureError(f"note: {exc}") from None
    if (not isinstance(note, dict) or set(note) != {"case_id", "text", "version"} or note["version"] != VERSION
            or not isinstance(note["text"], str)):
        raise SignatureError("note: not a version 1 note")
    if note["case_id"] != case_id:
        raise SignatureError("note: it belongs to another case")
    return note["text"]
