"""``carebridge keys audit``: the owner's half of key transparency.

Senders check that a recipient's key is in the log (:mod:`.transparency`),
but a dishonest gateway can publish a key of its own making for someone:
proof of possession shows only that the registrant holds that key. So the
owner looks at every key registration the log holds for them:

1. the latest checkpoint, signed by the pinned log key, extends the one the
   last audit saw (a consistency proof), so nothing audited before changed;
2. every registration the gateway lists for me that the last audit did not
   check is proven: its signed statement names me and the listed keys, its
   log entry is a ``keys.register`` of mine publishing that statement, and
   the entry is included in the checkpoint;
3. with ``--scan`` (an auditor, who may read entries), every entry added
   since the last scan is read and hashed into the checkpoint's root, so a
   registration the listing left out is found anyway;
4. a registration whose keys are neither in my key file nor in the record
   of keys I registered from here (written by ``keys register``) is an alarm.

What the audit saw is kept in a small state file next to the key file
(``KEYFILE.keys-audit.json``, per log key and user), so the next run reads
only what is new: one checkpoint, one consistency proof, the listing and
the proofs of new registrations (and, scanning, the new entries).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...crypto import merkle, note, tlog_proof
from ...crypto.audit_bundle import MAX_ENTRY_SIZE
from ...crypto.errors import CryptoError
from ...crypto.fingerprint import fingerprint
from ...crypto.registration import log_object, verify_registration
from ...crypto.signing import VerifyKey
from ._terminal import CLIError, atomic_output
from .api import ApiError, Client

STATE_SUFFIX = ".keys-audit.json"
MAX_STATE_BYTES = 1 << 20  # a few keys and a compact range: far smaller
STATE_VERSION = 1
SCAN_PAGE = 100_000  # entries per request while scanning (the gateway streams them)
AUTO_SETTING = "keys_audit"  # in the profile, or CAREBRIDGE_KEYS_AUDIT: "auto" runs it after each verb


class KeyAlarm(Exception):
    """The log shows something about my keys that I did not do, or the log itself misbehaved."""


@dataclass(frozen=True)
class Found:
    """One key registration of mine the log holds."""

    seq: int
    time: str
    age_recipient: str
    verify_key: str

    def describe(self) -> str:
        return (f"log seq {self.seq} ({self.time}): age key {fingerprint(self.age_recipient)},"
                f" signing key {fingerprint(VerifyKey.parse(self.verify_key))}")

    def to_json(self) -> dict:
        return {"seq": self.seq, "time": self.time, "age_recipient": self.age_recipient,
                "verify_key": self.verify_key,
                "fingerprints": {"age_recipient": fingerprint(self.age_recipient),
                                 "verify_key": fingerprint(VerifyKey.parse(self.verify_key))}}


@dataclass
class State:
    """What the last audit of one user on one log saw (``STATE_SUFFIX`` file)."""

    size: int = 0  # the checkpoint last audited
    root: bytes = b""
    known: set[tuple[str, str]] = field(default_factory=set)  # (age recipient, verify key) I registered
    checked: set[int] = field(default_factory=set)  # seqs of my registrations proven before
    scanned: int = 0  # entries 0..scanned-1 read by --scan; frontier is their compact range
    frontier: list[bytes] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"size": self.size, "root": _b64(self.root), "known": sorted(map(list, self.known)),
                "checked": sorted(self.checked), "scanned": self.scanned,
                "frontier": [_b64(h) for h in self.frontier]}

    @classmethod
    def from_json(cls, data: dict) -> State:
        state = cls(int(data["size"]), _unb64(data["root"]), {(str(a), str(v)) for a, v in data["known"]},
                    {int(s) for s in data["checked"]}, int(data["scanned"]),
                    [_unb64(h) for h in data["frontier"]])
        if len(state.frontier) != state.scanned.bit_count() or any(len(h) != merkle.HASH_SIZE for h in state.frontier):
            raise ValueError("frontier")
        return state


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class StateFile:
    """The audit states of one key file: ``{"version": 1, "logs": {"LOGKEY USER": state}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, key_file: str) -> StateFile:
        return cls(Path(key_file + STATE_SUFFIX))

    def _all(self) -> dict:
        try:
            with open(self.path, "rb") as handle:
                text = handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return {"version": STATE_VERSION, "logs": {}}
        except OSError as exc:
            raise CLIError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            if len(text) > MAX_STATE_BYTES:
                raise ValueError
            data = json.loads(text)
            if data.get("version") != STATE_VERSION or not isinstance(data.get("logs"), dict):
                raise ValueError
            return data
        except (ValueError, AttributeError):
            raise CLIError(f"{self.path}: not a keys audit state file (move it away to start over)") from None

    def load(self, log_key: str, user_id: str) -> State:
        entry = self._all()["logs"].get(f"{log_key} {user_id}")
        if entry is None:
            return State()
        try:
            return State.from_json(entry)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise CLIError(f"{self.path}: a damaged keys audit state (move it away to start over)") from None

    def save(self, log_key: str, user_id: str, state: State) -> None:
        data = self._all()
        data["logs"][f"{log_key} {user_id}"] = state.to_json()
        with atomic_output(str(self.path), mode=0o600) as out:
            out.write(json.dumps(data, indent=1).encode() + b"\n")

    def remember(self, log_key: str, user_id: str, age_recipient: str, verify_key: str) -> None:
        """Record keys I am registering, so no later audit takes them for a stranger's."""
        state = self.load(log_key, user_id)
        state.known.add((age_recipient, verify_key))
        self.save(log_key, user_id, state)


@dataclass
class Report:
    previous_size: int
    size: int
    registrations: list[Found]
    unexpected: list[Found]
    hidden: list[str]  # registrations left out of the listing (found by the directory or the scan)
    proofs_checked: int
    entries_read: int
    scanned: bool

    def to_json(self) -> dict:
        return {"previous_size": self.previous_size, "checkpoint_size": self.size,
                "registrations": [f.to_json() for f in self.registrations],
                "unexpected": [f.to_json() for f in self.unexpected], "hidden": self.hidden,
                "proofs_checked": self.proofs_checked, "entries_read": self.entries_read, "scanned": self.scanned}

    @property
    def alarms(self) -> list[str]:
        return ([f"ALARM: a key registration you did not make: {f.describe()}" for f in self.unexpected]
                + [f"ALARM: {h}" for h in self.hidden])


async def audit(api: Client, *, verifier: note.Verifier, origin: str, user: dict, state: State,
                mine: set[tuple[str, str]], scan: bool, accepted: frozenset[int] = frozenset()) -> Report:
    """Audit the registrations of *user* (``/api/v1/me``) from *state* on; updates *state* (save it unless alarmed).

    The key the directory serves for me (what senders get) is checked with
    the listing: a gateway that serves a key it leaves out of my listing is
    caught; one that shows me another directory than it shows senders (a
    split view) is caught only by ``scan``. Registrations at the seqs in
    *accepted* are ones the owner checked and made elsewhere: their keys
    join the known ones.
    """
    user_id = user["id"]
    checkpoint = await _checkpoint(api, verifier, origin)
    previous = state.size
    await _extends(api, state, checkpoint)
    listed = await api.key_history(user_id)
    hidden = []
    active = user.get("keys")
    if active and active.get("log_seq") not in {r.get("log_seq") for r in listed}:
        hidden.append(f"log seq {active.get('log_seq')}: the directory serves a key for you that your key"
                      " listing leaves out")
        listed.append(active)
    found = []
    for record in listed:
        seq = record.get("log_seq")
        if not isinstance(seq, int) or seq in state.checked:
            continue
        if seq >= checkpoint.size:
            continue  # not in a signed checkpoint yet: the next audit proves it
        found.append(await _prove(api, record, user_id, verifier, origin, checkpoint))
    entries = 0
    if scan:
        entries, logged = await _scan(api, state, checkpoint, user_id)
        listed_seqs = {r.get("log_seq"): r for r in listed}
        for seq, obj in logged:
            record = listed_seqs.get(seq)
            if record is None or log_object(base64.b64decode(record["registration"])) != obj:
                hidden.append(f"log seq {seq} is a key registration of yours that the gateway's key listing"
                              f" leaves out (registration digest {obj})")
    state.known |= {(f.age_recipient, f.verify_key) for f in found if f.seq in accepted}
    known = mine | state.known
    unexpected = [f for f in found if (f.age_recipient, f.verify_key) not in known]
    state.size, state.root = checkpoint.size, checkpoint.root_hash
    state.checked |= {f.seq for f in found}
    return Report(previous, checkpoint.size, found, unexpected, hidden, len(found), entries, scan)


async def _checkpoint(api: Client, verifier: note.Verifier, origin: str) -> note.Checkpoint:
    try:
        return note.open_checkpoint(await api.audit_checkpoint(), verifier, origin=origin)
    except CryptoError as exc:
        raise KeyAlarm(f"the gateway's checkpoint is not signed by the pinned log key: {exc}") from None


async def _extends(api: Client, state: State, checkpoint: note.Checkpoint) -> None:
    """The new checkpoint extends the last one audited (else the log was rewritten or forked)."""
    if state.size == 0:
        return
    if checkpoint.size < state.size:
        raise KeyAlarm(f"the log shrank: checkpoint of size {checkpoint.size} after {state.size}")
    try:
        proof = []
        if checkpoint.size > state.size:
            answer = await api.audit_consistency_proof(state.size, checkpoint.size)
            proof = [base64.b64decode(h, validate=True) for h in answer["proof"]]
        merkle.verify_consistency(state.size, checkpoint.size, proof, state.root, checkpoint.root_hash)
    except (CryptoError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise KeyAlarm(f"the log of size {checkpoint.size} does not extend the one audited at size"
                       f" {state.size}: {exc}") from None


async def _prove(api: Client, record: dict, user_id: str, verifier: note.Verifier, origin: str,
                 checkpoint: note.Checkpoint) -> Found:
    """One listed registration, checked as the log holds it; KeyAlarm when it does not hold up."""
    seq = record["log_seq"]
    try:
        registration = base64.b64decode(record["registration"], validate=True)
        statement = verify_registration(registration)
        entry = base64.b64decode(record["log_entry"] or "", validate=True)
        fields = json.loads(entry)
    except (CryptoError, KeyError, TypeError, ValueError, binascii.Error):
        raise KeyAlarm(f"log seq {seq}: the gateway lists a registration of yours that is malformed") from None
    if (statement.user_id != user_id or statement.age_recipient != record.get("age_recipient")
            or statement.verify_key.encode() != record.get("verify_key")):
        raise KeyAlarm(f"log seq {seq}: the listed keys are not the ones its signed registration names")
    expected = {"action": "keys.register", "outcome": "allow", "actor": user_id,
                "object": log_object(registration), "seq": seq}
    if not isinstance(fields, dict) or any(fields.get(k) != v for k, v in expected.items()):
        raise KeyAlarm(f"log seq {seq}: the log entry does not publish the listed registration")
    try:
        proof = tlog_proof.parse_tlog_proof(await api.inclusion_proof(seq, checkpoint.size))
        proven = tlog_proof.verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(entry), verifier=verifier,
                                              origin=origin)
    except (CryptoError, ApiError) as exc:
        raise KeyAlarm(f"log seq {seq}: the registration is not proven to be in the log ({exc})") from None
    if proof.index != seq or (proven.size, proven.root_hash) != (checkpoint.size, checkpoint.root_hash):
        raise KeyAlarm(f"log seq {seq}: the inclusion proof is for another entry or checkpoint")
    return Found(seq, str(fields.get("time", "")), statement.age_recipient, statement.verify_key.encode())


class _Scanner:
    """A ``write`` for the entry stream: hashes each line into a compact range, notes my registrations."""

    def __init__(self, state: State, user_id: str) -> None:
        self.size, self.frontier = state.scanned, list(state.frontier)
        self.user_id, self.tail = user_id, b""
        self.logged: list[tuple[int, str]] = []

    def write(self, chunk: bytes) -> None:
        lines = (self.tail + chunk).split(b"\n")
        self.tail = lines.pop()
        if len(self.tail) > MAX_ENTRY_SIZE:
            raise KeyAlarm("the gateway sent an entry that is too long")
        for line in lines:
            self._entry(line)

    def _entry(self, line: bytes) -> None:
        try:
            fields = json.loads(line)
            seq, action = fields["seq"], fields.get("action")
        except (ValueError, KeyError, TypeError):
            raise KeyAlarm(f"the gateway sent a malformed entry after entry {self.size - 1}") from None
        if seq != self.size:
            raise KeyAlarm(f"the gateway sent entry {seq} where entry {self.size} belongs")
        if action == "keys.register" and fields.get("outcome") == "allow" and fields.get("actor") == self.user_id:
            self.logged.append((seq, str(fields.get("object"))))
        # A binary counter of perfect subtrees: one merge per trailing one bit of the size.
        h, size = merkle.leaf_hash(line), self.size
        while size & 1:
            h = merkle.node_hash(self.frontier.pop(), h)
            size >>= 1
        self.frontier.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.frontier:
            return merkle.EMPTY_ROOT
        h = self.frontier[-1]
        for left in reversed(self.frontier[:-1]):
            h = merkle.node_hash(left, h)
        return h


async def _scan(api: Client, state: State, checkpoint: note.Checkpoint, user_id: str) -> tuple[int, list]:
    """Read entries scanned..size-1, prove them the checkpoint's; returns (entries read, my registrations)."""
    scanner = _Scanner(state, user_id)
    start = state.scanned
    try:
        for page in range(start, checkpoint.size, SCAN_PAGE):
            await api.audit_entries(scanner, start=page, end=min(page + SCAN_PAGE, checkpoint.size))
    except ApiError as exc:
        if exc.status == 403:
            raise CLIError("--scan reads every new log entry: only auditors may (without it, the audit"
                           " relies on the gateway's listing of your keys)") from None
        raise
    if scanner.tail or scanner.size != checkpoint.size or scanner.root() != checkpoint.root_hash:
        raise KeyAlarm(f"the gateway's entries {start}..{checkpoint.size - 1} are not the ones the signed"
                       f" checkpoint of size {checkpoint.size} holds")
    state.scanned, state.frontier = scanner.size, scanner.frontier
    return scanner.size - start, scanner.logged


def wants_auto(values: Mapping[str, str]) -> bool:
    return values.get(AUTO_SETTING, "").strip().lower() in ("auto", "true", "1", "yes", "on")


__all__ = ["KeyAlarm", "Report", "State", "StateFile", "audit", "wants_auto"]
