"""The compliance officer's verbs: ``audit export``, ``verify``, ``checkpoint`` and ``pubkey``.

``export`` writes an audit bundle (:mod:`carebridge.crypto.audit_bundle`): a
fresh signed checkpoint, the entries and either all leaf hashes (the whole
log) or one inclusion proof per entry (a range or a filtered selection),
plus a consistency proof from ``--previous``. A range (``--start``, ``--end``,
``--since``, ``--until`` and no other filter) is written so that the bundle
proves no entry of it is missing; for a time window the gateway adds the
entry just before and the one just after it. It streams into the output
file in constant memory and checks the result before reporting success.
``--format jsonl|csv`` exports plain entries instead (also the default for
standard output and for ``-o`` names ending in ``.jsonl`` or ``.csv``).

``verify`` needs no server and no settings: the bundle, the log's verifier
key as the officer knows it (``--key``, from ``audit pubkey`` over a channel
they trust) and optionally a checkpoint kept from before (``--previous``,
saved by ``audit checkpoint``). Without a pinned key it refuses: a bundle
signed by any key verifies against that key, so only the pinned key shows it
is this log's. ``--trust-bundle-key`` verifies with the key the bundle names
and prints it, with its fingerprint, for the officer to check and pin.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ...crypto import merkle
from ...crypto.audit_bundle import (
    MAX_ENTRY_SIZE,
    BundleHeader,
    BundleWriter,
    Consistency,
    Verdict,
    entry_seq,
    is_range,
    verify_bundle,
)
from ...crypto.errors import CryptoError
from ...crypto.fingerprint import fingerprint
from ...crypto.note import MAX_NOTE_SIZE, Checkpoint, Verifier, open_checkpoint
from ...crypto.signing import VerifyKey
from ...crypto.tlog_proof import parse_tlog_proof, verify_tlog_proof
from ._terminal import CLIError, atomic_output, read_limited
from .api import ApiError, Client

# Entries (and leaf hashes) asked for per request: below the gateway's cap.
EXPORT_PAGE = 1 << 20
# Inclusion proofs in flight at once while exporting a selection.
PROOF_WINDOW = 16
# Bytes copied at a time from the spool file into the bundle.
COPY_CHUNK = 1 << 20
# The log's verifier key a user trusts, as the other client verbs read it.
LOG_VERIFIER_ENV = "CAREBRIDGE_LOG_VERIFIER"
FILTERS = ("since", "until", "org", "document", "actor", "action", "outcome")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

Connect = Callable[[argparse.Namespace, Mapping[str, str]], Client]


def register(sub: argparse._SubParsersAction, *, connect: Connect) -> None:
    """Add ``audit …`` to the parser; ``connect`` makes the API client from args and env."""
    audit = sub.add_parser("audit", help="the access log: export, verify, checkpoints")
    verbs = audit.add_subparsers(dest="audit_verb", required=True)

    p = verbs.add_parser("export", help="export the log as a verifiable bundle (or JSONL/CSV)")
    _network_flags(p)
    p.add_argument("-o", "--output", metavar="BUNDLE", help="output file (default: JSONL on standard output)")
    p.add_argument("--format", choices=("bundle", "jsonl", "csv"),
                   help="default: bundle, or jsonl/csv for standard output and .jsonl/.csv names")
    p.add_argument("--start", type=int, metavar="S", help="first entry (seq)")
    p.add_argument("--end", type=int, metavar="E", help="end of the range (exclusive)")
    for name in ("since", "until"):
        p.add_argument(f"--{name}", metavar="TIME", help="RFC 3339 time, e.g. 2026-01-31T00:00:00Z")
    for name in ("org", "document", "actor"):
        p.add_argument(f"--{name}", metavar="ID",
                       help=f"only entries of this {name} id (a selection: not provably complete)")
    p.add_argument("--action", metavar="ACTION", help="e.g. document.download")
    p.add_argument("--outcome", choices=("allow", "deny"), help="only allowed or only denied actions")
    p.add_argument("--previous", type=Path, metavar="CHECKPOINT_FILE",
                   help="include the proof that the log extends this earlier checkpoint")
    p.set_defaults(run=lambda a, e: _run(export(a, connect(a, e))))

    p = verbs.add_parser("verify", help="verify a bundle offline")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="the ZIP bundle that `audit export -o` wrote")
    p.add_argument("--previous", type=Path, metavar="CHECKPOINT_FILE",
                   help="an earlier checkpoint of the log: prove the bundle extends it")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--key", metavar="VERIFIER_KEY",
                       help=f"the log's verifier key as you know it (pinned; default: ${LOG_VERIFIER_ENV})")
    trust.add_argument("--trust-bundle-key", action="store_true",
                       help="no pinned key: verify with the key the bundle names, and print it to pin")
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON document")
    p.set_defaults(run=verify)

    p = verbs.add_parser("disclosures", help="an accounting of disclosures (date, recipient, what, purpose), per"
                                             " case or per clinic and period, with the bundles that prove it")
    _network_flags(p)
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--case", metavar="CASE_ID", help="one referral case (its case_… id, as the log names it)")
    scope.add_argument("--org", metavar="ORG_ID", help="a clinic: the documents it sent (with --since/--until)")
    for name in ("since", "until"):
        p.add_argument(f"--{name}", metavar="TIME", help="with --org: RFC 3339 time, e.g. 2026-01-31T00:00:00Z")
    p.add_argument("--max-documents", type=int, default=500, metavar="N",
                   help="refuse a report of more documents than this (one bundle each; default 500)")
    p.add_argument("-o", "--output", required=True, metavar="FOLDER",
                   help="a new folder: disclosures.csv, disclosures.json and the bundles they come from")
    p.add_argument("--key", metavar="VERIFIER_KEY",
                   help=f"the log's verifier key as you know it (pinned; default: ${LOG_VERIFIER_ENV})")
    p.set_defaults(run=lambda a, e: _run(_disclosures(a, e, connect)))

    p = verbs.add_parser("checkpoint", help="save the log's latest signed checkpoint")
    _network_flags(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the signed checkpoint")
    p.add_argument("--fresh", action="store_true",
                   help="have the gateway sign one of the log as it is now (auditors only)")
    p.set_defaults(run=lambda a, e: _run(save_checkpoint(a, connect(a, e))))

    p = verbs.add_parser("pubkey", help="print the log's origin and verifier key")
    _network_flags(p)
    p.set_defaults(run=lambda a, e: _run(pubkey(a, connect(a, e))))


async def _disclosures(args: argparse.Namespace, env: Mapping[str, str], connect: Connect) -> int:
    from .disclosures import disclosures

    key = args.key or env.get(LOG_VERIFIER_ENV) or None
    if key is None:
        raise CLIError("the log's verifier key must be pinned: pass --key VERIFIER_KEY (from `carebridge audit"
                       " pubkey` over a channel you trust) or set " + LOG_VERIFIER_ENV)
    if args.case and (args.since or args.until):
        raise CLIError("--since and --until go with --org (a case's report covers the whole case)")
    if not 1 <= args.max_documents <= 100_000:
        raise CLIError("--max-documents is from 1 to 100000")
    return await disclosures(args, connect(args, env), key)


def _network_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", type=Path, help="TOML file with url, token, identity")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coro)
    except ApiError as exc:
        raise CLIError(str(exc)) from None


def _print(args: argparse.Namespace, data: dict, text: str) -> None:
    print(json.dumps(data) if args.json else text)


# -- verify (offline) ------------------------------------------------------------


def verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    key = args.key or env.get(LOG_VERIFIER_ENV) or None
    if key is None and not args.trust_bundle_key:
        raise CLIError("the log's verifier key must be pinned: get it with `carebridge audit pubkey` over a "
                       "channel you trust and pass --key VERIFIER_KEY (or --trust-bundle-key to use the "
                       "bundle's own key and print it)")  # fmt: skip
    previous = _read_checkpoint_file(args.previous) if args.previous else None
    try:
        bundle = open(args.bundle, "rb")
    except OSError as exc:
        raise CLIError(f"cannot read {args.bundle}: {exc.strerror}") from None
    with bundle:
        verdict = verify_bundle(bundle, previous=previous, verifier_key=key)
    if args.json:
        print(json.dumps(verdict.as_dict()))
    if not verdict.ok:
        raise CLIError(f"FAILED: {verdict.message}")
    if not args.json:
        print(f"OK: {verdict.message}")
        if not verdict.key_pinned:
            print(f"key to pin: {verdict.key} fingerprint {verdict.key_fingerprint}: compare the fingerprint "
                  f"with `carebridge audit pubkey` over a channel you trust, then verify with --key "
                  f"{verdict.verifier_key}")  # fmt: skip
    return 0


def _verify_file(path: str, previous: bytes | None, key: str) -> Verdict:
    with open(path, "rb") as bundle:
        return verify_bundle(bundle, previous=previous, verifier_key=key)


def _read_checkpoint_file(path: Path) -> bytes:
    return read_limited(path, MAX_NOTE_SIZE)


# -- the log's key and checkpoints ---------------------------------------------------


@dataclass(frozen=True)
class _Log:
    origin: str
    verifier: Verifier

    def open(self, note: bytes, what: str) -> Checkpoint:
        try:
            return open_checkpoint(note, self.verifier, origin=self.origin)
        except CryptoError as exc:
            raise CLIError(f"{what} is not a checkpoint of this log: {exc}") from None


async def _log(api: Client) -> _Log:
    info = await api.audit_verifier()
    try:
        origin, key = info["origin"], info["verifier_key"]
        return _Log(origin, Verifier.parse(key))
    except (CryptoError, KeyError, TypeError):
        raise CLIError("the gateway's log verifier key is malformed") from None


async def pubkey(args: argparse.Namespace, api: Client) -> int:
    async with api:
        log = await _log(api)
    info = {"origin": log.origin, "verifier_key": log.verifier.encode(),
            "fingerprint": fingerprint(VerifyKey(log.verifier.public_key))}
    _print(args, info, f"origin: {info['origin']}\nverifier key: {info['verifier_key']}\n"
                       f"fingerprint: {info['fingerprint']}")
    return 0


async def save_checkpoint(args: argparse.Namespace, api: Client) -> int:
    async with api:
        log = await _log(api)
        note = await (api.audit_sign_checkpoint() if args.fresh else api.audit_checkpoint())
    checkpoint = log.open(note, "the gateway's checkpoint")
    with atomic_output(args.output, durable=True) as out:
        out.write(note)
    info = {"path": str(args.output), "origin": checkpoint.origin, "size": checkpoint.size,
            "root_hash": base64.b64encode(checkpoint.root_hash).decode()}
    _print(args, info, f"saved the checkpoint of size {checkpoint.size} to {args.output}")
    return 0


# -- export ----------------------------------------------------------------------------


async def export(args: argparse.Namespace, api: Client) -> int:
    fmt = args.format or ("jsonl" if args.output in (None, "-")
                          else _SUFFIX_FORMATS.get(Path(args.output).suffix.lower(), "bundle"))
    filters: dict[str, str | int] = {n: getattr(args, n) for n in FILTERS if getattr(args, n) is not None}
    if fmt != "bundle":
        if args.previous:
            raise CLIError("--previous goes with --format bundle")
        async with api:
            with atomic_output(args.output) as out:
                count = await api.audit_entries(out, start=args.start or 0, end=args.end,
                                                filters=filters, format=fmt)
        if fmt == "csv" and count:
            count -= 1  # the header row
        print(f"exported {count} entries", file=sys.stderr)
        return 0
    if args.output in (None, "-"):
        raise CLIError("a bundle is written to a file: -o BUNDLE (or --format jsonl)")
    previous = _read_checkpoint_file(args.previous) if args.previous else None
    async with api:
        summary = await _export_bundle(api, args, filters, previous)
    # Check what was written, as the officer will.
    verdict = await asyncio.to_thread(_verify_file, args.output, previous, summary["verifier_key"])
    if not verdict.ok:
        raise CLIError(f"{args.output} was written but does not verify: {verdict.message}")
    summary["entries"] = verdict.entries_checked
    _print(args, summary, f"exported {verdict.entries_checked} entries to {args.output} "
                          f"(checkpoint of size {summary['checkpoint_size']})")
    return 0


async def _export_bundle(api: Client, args: argparse.Namespace, filters: dict[str, str | int],
                         previous: bytes | None) -> dict:  # fmt: skip
    log = await _log(api)
    old = log.open(previous, str(args.previous)) if previous is not None else None
    note = await api.audit_sign_checkpoint()
    checkpoint = log.open(note, "the gateway's fresh checkpoint")
    size = checkpoint.size
    if old is not None and old.size > size:
        raise CLIError(f"{args.previous} (size {old.size}) is newer than the log's checkpoint (size {size})")
    full = not filters and args.start is None and args.end is None
    if not full:
        if args.start is not None:
            filters["start"] = args.start
        if args.end is not None:
            filters["end"] = args.end
    consistency = None
    if not full and old is not None and old.size > 0:
        consistency = await _consistency(api, old.size, size)
    header = BundleHeader(origin=log.origin, verifier_key=log.verifier.encode(), checkpoint_size=size,
                          full=full, filters=filters, consistency=consistency)
    with atomic_output(args.output) as out, BundleWriter(out, header=header, checkpoint=note) as writer:
        if full:
            await _copy_full(api, writer, size)
        else:
            await _copy_selection(api, writer, log, checkpoint, filters)
    return {"path": str(args.output), "origin": log.origin, "verifier_key": log.verifier.encode(),
            "checkpoint_size": size, "full": full, "filters": filters,
            "previous_size": old.size if old else None}


async def _consistency(api: Client, old: int, size: int) -> Consistency:
    answer = await api.audit_consistency_proof(old, size)
    try:
        if answer["old"] != old or answer["size"] != size:
            raise ValueError
        proof = tuple(base64.b64decode(h, validate=True) for h in answer["proof"])
        return Consistency(old_size=old, proof=proof)
    except (CryptoError, KeyError, TypeError, ValueError, binascii.Error):
        raise CLIError("the gateway's consistency proof is malformed") from None


class _Sink:
    """A ``write`` for the API's streaming methods that feeds a bundle member."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write


async def _copy_full(api: Client, writer: BundleWriter, size: int) -> None:
    """All entries, then all leaf hashes, a page of requests at a time."""
    for start in range(0, size, EXPORT_PAGE):
        end = min(start + EXPORT_PAGE, size)
        got = await api.audit_entries(_Sink(writer.write_entries), start=start, end=end)
        if got != end - start:
            raise CLIError(f"the gateway sent {got} entries for {start}..{end - 1}")
    for start in range(0, size, EXPORT_PAGE):
        end = min(start + EXPORT_PAGE, size)
        got = await api.audit_leaves(_Sink(writer.write_leaves), start=start, end=end)
        if got != (end - start) * merkle.HASH_SIZE:
            raise CLIError(f"the gateway sent {got} bytes of leaf hashes for {start}..{end - 1}")


async def _copy_selection(api: Client, writer: BundleWriter, log: _Log, checkpoint: Checkpoint,
                          filters: dict) -> None:  # fmt: skip
    """The selected entries, spooled to a temporary file, then one inclusion proof per entry.

    A time range comes in one request with its boundary entries (``bounds=1``),
    which the bundle needs to prove it complete.
    """
    query = {k: v for k, v in filters.items() if k not in ("start", "end")}
    end = min(filters.get("end", checkpoint.size), checkpoint.size)
    start = min(filters.get("start", 0), end)
    with tempfile.TemporaryFile() as spool:
        if query and is_range(filters):
            await api.audit_entries(spool, start=start, end=end, filters={**query, "bounds": "1"})
        else:
            for page in range(start, end, EXPORT_PAGE):
                await api.audit_entries(spool, start=page, end=min(page + EXPORT_PAGE, end), filters=query)
        spool.seek(0)
        while chunk := await asyncio.to_thread(spool.read, COPY_CHUNK):
            await asyncio.to_thread(writer.write_entries, chunk)
        spool.seek(0)
        batch: list[bytes] = []
        for line in _spooled_lines(spool):
            batch.append(line)
            if len(batch) == PROOF_WINDOW:
                await _prove(api, writer, log, checkpoint, batch)
                batch = []
        await _prove(api, writer, log, checkpoint, batch)


def _spooled_lines(spool: IO[bytes]) -> Iterator[bytes]:
    while line := spool.readline(MAX_ENTRY_SIZE + 1):
        if not line.endswith(b"\n"):
            raise CLIError("the gateway sent an entry that is too long or does not end in a newline")
        yield line[:-1]


async def _prove(api: Client, writer: BundleWriter, log: _Log, checkpoint: Checkpoint,
                 lines: list[bytes]) -> None:  # fmt: skip
    """Fetch the lines' inclusion proofs concurrently, check them, write them in order."""
    try:
        seqs = [entry_seq(line) for line in lines]
    except CryptoError as exc:
        raise CLIError(f"the gateway sent an entry without a seq: {exc}") from None
    answers = await asyncio.gather(*(api.inclusion_proof(seq, checkpoint.size) for seq in seqs))
    for line, seq, answer in zip(lines, seqs, answers, strict=True):
        try:
            proof = parse_tlog_proof(answer)
            proven = verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(line), verifier=log.verifier,
                                       origin=log.origin)  # fmt: skip
        except CryptoError as exc:
            raise CLIError(f"the gateway's inclusion proof of entry {seq} does not verify: {exc}") from None
        if proof.index != seq or (proven.size, proven.root_hash) != (checkpoint.size, checkpoint.root_hash):
            raise CLIError(f"the gateway's inclusion proof of entry {seq} is for another entry or checkpoint")
        writer.write_proof(seq, proof.hashes)
