"""The compliance officer's CLI: ``carebridge audit verify`` offline, ``export`` against a gateway.

``verify`` is driven with bundles built here (:mod:`tests.crypto.audit_factories`)
and tampered with, through :func:`carebridge.gateway.cli.main` in-process and,
for the exit-code contract, through the installed console script with no
``CAREBRIDGE_*`` setting at all. ``export``, ``checkpoint`` and ``pubkey``
talk to a small stand-in gateway (a thread serving the ``/api/v1/audit``
endpoints from a :class:`~tests.crypto.audit_factories.Log`), which can also
lie, so the export's own checks are tested too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web
from carebridge.crypto import merkle, note
from carebridge.crypto.tlog_proof import TlogProof
from carebridge.gateway.cli import main

from ...crypto.audit_factories import ORIGIN, Log, lines, make_entry, members, rezip

CAREBRIDGE = Path(sys.executable).parent / "carebridge"
TOKEN = "cb1.test-token.not-a-real-secret"
SIZE = 40


@pytest.fixture(scope="module")
def log() -> Log:
    return Log(SIZE, seed=21)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient settings: verify must work without any."""
    for name in list(os.environ):
        if name.startswith("CAREBRIDGE_"):
            monkeypatch.delenv(name)


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def refused(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    """Exit 1 and exactly one ``carebridge: error:`` line; returns the message after the prefix."""
    code, _, err = run(capsys, *argv)
    assert code == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("carebridge: error: "), err
    return err.removeprefix("carebridge: error: ").rstrip("\n")


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# -- verify: the happy paths ---------------------------------------------------------


def test_verify_full_bundle(log: Log, tmp_path: Path, capsys, env) -> None:
    bundle = write(tmp_path, "audit.zip", log.full_bundle())
    out = ok(capsys, "audit", "verify", bundle, "--key", log.verifier_key)
    key = f"{ORIGIN}+{log.signer.key_id:08x}"
    assert re.fullmatch(rf"OK: 40 entries verified against checkpoint of size 40 by {re.escape(key)} "
                        r"\([0-9A-Z]{4}(-[0-9A-Z]{4}){5}\)\n", out), out  # fmt: skip


def test_verify_filtered_bundle_with_previous(log: Log, tmp_path: Path, capsys, env) -> None:
    bundle = write(tmp_path, "a.zip", log.partial_bundle([1, 4, 33], filters={"org": "o_clinic"}, previous_size=12))
    previous = write(tmp_path, "cp12", log.checkpoint(12))
    out = ok(capsys, "audit", "verify", bundle, "--previous", previous, "--key", log.verifier_key)
    assert out.startswith("OK: 3 entries verified against checkpoint of size 40")
    assert "filtered selection" in out and "previous checkpoint of size 12" in out


def test_verify_json(log: Log, tmp_path: Path, capsys, env) -> None:
    bundle = write(tmp_path, "a.zip", log.full_bundle())
    verdict = json.loads(ok(capsys, "audit", "verify", bundle, "--json", "--trust-bundle-key"))
    assert verdict["ok"] is True and verdict["entries_checked"] == SIZE and verdict["key_pinned"] is False
    assert verdict["verifier_key"] == log.verifier_key and verdict["complete"] is True
    entries = lines(members(log.full_bundle())["entries.jsonl"])
    del entries[3]
    tampered = write(tmp_path, "b.zip", rezip(log.full_bundle(), entries_jsonl=b"".join(entries)))
    code, out, err = run(capsys, "audit", "verify", tampered, "--json", "--key", log.verifier_key)
    assert code == 1 and json.loads(out)["first_bad_seq"] == 3
    assert err.startswith("carebridge: error: FAILED: entry 3 ")


def test_verify_pins_the_key_from_the_environment(log: Log, tmp_path: Path, capsys, env,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    bundle = write(tmp_path, "a.zip", log.full_bundle())
    monkeypatch.setenv("CAREBRIDGE_LOG_VERIFIER", Log(1).verifier_key)
    assert "not the pinned key" in refused(capsys, "audit", "verify", bundle)
    monkeypatch.setenv("CAREBRIDGE_LOG_VERIFIER", log.verifier_key)
    assert "not pinned" not in ok(capsys, "audit", "verify", bundle)


# -- verify: every tamper is a one-line FAILED naming what is wrong -----------------------


def _entries(log: Log) -> list[bytes]:
    return lines(members(log.full_bundle())["entries.jsonl"])


def _modified(log: Log) -> bytes:
    entries = _entries(log)
    entries[17] = entries[17].replace(b'"reason":"ok"', b'"reason":"no"')
    return rezip(log.full_bundle(), entries_jsonl=b"".join(entries))


def _deleted(log: Log) -> bytes:
    entries = _entries(log)
    del entries[17]
    return rezip(log.full_bundle(), entries_jsonl=b"".join(entries))


def _inserted(log: Log) -> bytes:
    entries = _entries(log)
    entries.insert(17, make_entry(17, log.rng) + b"\n")
    return rezip(log.full_bundle(), entries_jsonl=b"".join(entries))


def _reordered(log: Log) -> bytes:
    entries = _entries(log)
    entries[17], entries[18] = entries[18], entries[17]
    return rezip(log.full_bundle(), entries_jsonl=b"".join(entries))


def _forged(log: Log) -> bytes:
    checkpoint = members(log.full_bundle())["checkpoint"]
    text, _, signature = checkpoint.rstrip(b"\n").rpartition(b" ")
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 1
    return rezip(log.full_bundle(), checkpoint=text + b" " + base64.b64encode(bytes(raw)) + b"\n")


def _header(log: Log, **changes: object) -> bytes:
    header = json.loads(members(log.full_bundle())["bundle.json"])
    header.update(changes)
    return rezip(log.full_bundle(), bundle_json=json.dumps(header, sort_keys=True, separators=(",", ":")).encode())


TAMPERS: dict[str, tuple[Callable[[Log], bytes], str]] = {
    "entry modified": (_modified, r"^FAILED: entry 17 does not match leaf 17 "),
    "entry deleted": (_deleted, r"^FAILED: entry 17 does not match leaf 17 "),
    "entry inserted": (_inserted, r"^FAILED: entry 17 does not match leaf 17 "),
    "entries reordered": (_reordered, r"^FAILED: entry 17 does not match leaf 17 "),
    "entries cut": (lambda log: rezip(log.full_bundle(), entries_jsonl=b"".join(_entries(log)[:30])),
                    r"^FAILED: entries.jsonl is cut: 30 of 40 entries$"),
    "leaves cut": (lambda log: rezip(log.full_bundle(), leaves_bin=members(log.full_bundle())["leaves.bin"][:-64]),
                   r"^FAILED: leaves.bin is cut or padded"),
    "checkpoint of another size": (lambda log: rezip(log.full_bundle(), checkpoint=log.checkpoint(39)),
                                   r"^FAILED: bundle.json says size 40, the signed checkpoint is of size 39$"),
    "checkpoint of another key": (lambda log: rezip(log.full_bundle(),
                                                    checkpoint=log.checkpoint(signer=note.Signer.generate(ORIGIN))),
                                  r"^FAILED: checkpoint is not a checkpoint of .* no signature from a known key$"),
    "signature forged": (_forged, r"^FAILED: checkpoint .* invalid signature by known key"),
    "checkpoint of another origin": (lambda log: rezip(log.full_bundle(), checkpoint=log.checkpoint(origin="x.test/log")),
                                     r"checkpoint is for origin 'x.test/log'"),
    "not a zip": (lambda log: b"this is not a bundle", r"^FAILED: not a readable ZIP file"),
    "missing member": (lambda log: rezip(log.full_bundle(), drop=["leaves.bin"]), r"^FAILED: a full bundle needs leaves.bin$"),
    "unknown key": (lambda log: _header(log, signed_by="me"), r"^FAILED: bundle.json: unknown key 'signed_by'$"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_verify_refuses_a_tampered_bundle(log: Log, tmp_path: Path, capsys, env, case: str) -> None:
    make, message = TAMPERS[case]
    bundle = write(tmp_path, "audit.zip", make(log))
    assert re.search(message, refused(capsys, "audit", "verify", bundle, "--key", log.verifier_key))


def test_verify_refuses_another_logs_bundle(log: Log, tmp_path: Path, capsys, env) -> None:
    impostor = write(tmp_path, "audit.zip", Log(SIZE, seed=21).full_bundle())  # same entries, own key
    assert "OK: 40 entries" in ok(capsys, "audit", "verify", impostor, "--trust-bundle-key")
    assert re.search(r"^FAILED: the bundle names the key .*, not the pinned key",
                     refused(capsys, "audit", "verify", impostor, "--key", log.verifier_key))  # fmt: skip


def test_verify_detects_a_fork(tmp_path: Path, capsys, env) -> None:
    signer = note.Signer.generate(ORIGIN)
    history_a, history_b = Log(20, seed=1, signer=signer), Log(20, seed=2, signer=signer)
    previous = write(tmp_path, "cp", history_a.checkpoint())
    bundle = write(tmp_path, "b.zip", history_b.full_bundle())
    message = refused(capsys, "audit", "verify", bundle, "--previous", previous, "--key", signer.verifier.encode())
    assert message.startswith("FAILED: two different logs of size 20") and "fork" in message


def test_verify_detects_rewritten_history(tmp_path: Path, capsys, env) -> None:
    signer = note.Signer.generate(ORIGIN)
    history_a, history_b = Log(10, seed=1, signer=signer), Log(20, seed=2, signer=signer)
    previous = write(tmp_path, "cp10", history_a.checkpoint())
    full = write(tmp_path, "b.zip", history_b.full_bundle())
    key = signer.verifier.encode()
    assert refused(capsys, "audit", "verify", full, "--previous", previous, "--key", key).startswith(
        "FAILED: history rewritten: the first 10 entries differ")
    partial = write(tmp_path, "p.zip", history_b.partial_bundle([15], previous_size=10))
    assert "fork or rewritten history" in refused(capsys, "audit", "verify", partial, "--previous", previous,
                                                  "--key", key)


def test_verify_bad_arguments(log: Log, tmp_path: Path, capsys, env) -> None:
    bundle = write(tmp_path, "a.zip", log.full_bundle())
    key = ("--key", log.verifier_key)
    assert refused(capsys, "audit", "verify", tmp_path / "missing.zip", *key).startswith("cannot read ")
    message = refused(capsys, "audit", "verify", bundle, "--previous", tmp_path / "nope", *key)
    assert message.startswith("cannot read ")
    garbage = write(tmp_path, "cp", b"\x00" * 10)
    assert "previous checkpoint" in refused(capsys, "audit", "verify", bundle, "--previous", garbage, *key)
    assert "pinned verifier key is malformed" in refused(capsys, "audit", "verify", bundle, "--key", "abc")


def console(*argv: object) -> subprocess.CompletedProcess:
    """The installed command, with no CAREBRIDGE_* setting at all."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    return subprocess.run([str(CAREBRIDGE), *map(str, argv)], capture_output=True, text=True, env=clean,
                          timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize("tampered", [False, True])
def test_verify_console_script(log: Log, tmp_path: Path, tampered: bool) -> None:
    """Exit 0 and one OK line, or exit 1 and one error line."""
    bundle = write(tmp_path, "audit.zip", _reordered(log) if tampered else log.full_bundle())
    proc = console("audit", "verify", bundle, "--key", log.verifier_key)
    assert "Traceback" not in proc.stderr
    if tampered:
        assert proc.returncode == 1 and proc.stdout == ""
        assert re.fullmatch(r"carebridge: error: FAILED: entry 17 does not match leaf 17 .*\n", proc.stderr)
    else:
        assert proc.returncode == 0 and proc.stderr == ""
        assert proc.stdout.startswith("OK: 40 entries verified against checkpoint of size 40 by ")
        assert len(proc.stdout.splitlines()) == 1


def test_verify_without_a_pinned_key_refuses(log: Log, tmp_path: Path) -> None:
    """No --key, no CAREBRIDGE_LOG_VERIFIER: a bundle would verify against whatever key it names, so refuse."""
    bundle = write(tmp_path, "audit.zip", log.full_bundle())
    proc = console("audit", "verify", bundle)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert re.fullmatch(r"carebridge: error: the log's verifier key must be pinned: get it with `carebridge "
                        r"audit pubkey` over a channel you trust and pass --key VERIFIER_KEY \(or "
                        r"--trust-bundle-key .*\)\n", proc.stderr), proc.stderr  # fmt: skip
    impostor = write(tmp_path, "other.zip", Log(SIZE, seed=21).full_bundle())
    assert console("audit", "verify", impostor).returncode == 1  # an impostor's bundle is refused the same way


def test_verify_trust_bundle_key_prints_the_key_to_pin(log: Log, tmp_path: Path) -> None:
    bundle = write(tmp_path, "audit.zip", log.full_bundle())
    proc = console("audit", "verify", bundle, "--trust-bundle-key")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    verdict_line, pin_line = proc.stdout.splitlines()
    key_name = f"{ORIGIN}+{log.signer.key_id:08x}"
    assert verdict_line.startswith("OK: 40 entries verified")
    assert verdict_line.endswith("key from the bundle, not pinned")
    found = re.fullmatch(rf"key to pin: {re.escape(key_name)} fingerprint ([0-9A-Z]{{4}}(?:-[0-9A-Z]{{4}}){{5}}): "
                         r"compare the fingerprint with `carebridge audit pubkey` over a channel you trust, "
                         r"then verify with --key (\S+)", pin_line)  # fmt: skip
    assert found and found[2] == log.verifier_key, pin_line
    assert f"({found[1]})" in verdict_line  # the fingerprint the verdict was checked against
    pinned = console("audit", "verify", bundle, "--key", found[2])
    assert pinned.returncode == 0 and len(pinned.stdout.splitlines()) == 1 and "not pinned" not in pinned.stdout
    tampered = console("audit", "verify", write(tmp_path, "t.zip", _reordered(log)), "--trust-bundle-key")
    assert tampered.returncode == 1 and tampered.stdout == ""
    both = console("audit", "verify", bundle, "--trust-bundle-key", "--key", log.verifier_key)
    assert both.returncode != 0 and "not allowed with argument" in both.stderr


# -- a stand-in gateway for export, checkpoint and pubkey ----------------------------------------


class Gateway:
    """The ``/api/v1/audit`` endpoints of the gateway, served from a :class:`Log`; can lie on request."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.signed: dict[int, bytes] = {}
        self.lie: dict[str, Callable] = {}  # endpoint name -> change to its answer
        self.requests: list[str] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.add_routes([
            web.get("/api/v1/audit/verifier", self.verifier),
            web.post("/api/v1/audit/checkpoint", self.sign),
            web.get("/api/v1/audit/checkpoint", self.latest),
            web.get("/api/v1/audit/checkpoints/{size}", self.at),
            web.get("/api/v1/audit/proof/inclusion", self.inclusion),
            web.get("/api/v1/audit/proof/consistency", self.consistency),
            web.get("/api/v1/audit/entries", self.entries),
            web.get("/api/v1/audit/leaves", self.leaves),
        ])  # fmt: skip
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        self.requests.append(request.path_qs)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"type": "about:blank#unauthenticated", "title": "Unauthorized",
                                      "detail": "bad token"}, status=401, content_type="application/problem+json")
        return await handler(request)

    def _answer(self, name: str, value):
        return self.lie[name](value) if name in self.lie else value

    async def verifier(self, request: web.Request) -> web.Response:
        return web.json_response(self._answer("verifier", {"origin": self.log.origin,
                                                           "verifier_key": self.log.verifier_key}))

    async def sign(self, request: web.Request) -> web.Response:
        size = self.log.tree.size
        self.signed.setdefault(size, self.log.checkpoint(size))
        return web.Response(body=self._answer("checkpoint", self.signed[size]), content_type="text/plain")

    async def latest(self, request: web.Request) -> web.Response:
        return web.Response(body=self.signed[max(self.signed)], content_type="text/plain")

    async def at(self, request: web.Request) -> web.Response:
        return web.Response(body=self.signed[int(request.match_info["size"])], content_type="text/plain")

    async def inclusion(self, request: web.Request) -> web.Response:
        index, size = int(request.query["index"]), int(request.query["size"])
        hashes = merkle.prove_inclusion(index, size, self.log.tree)
        proof = TlogProof(index=index, hashes=tuple(hashes), signed_checkpoint=self.signed[size])
        return web.Response(body=self._answer("inclusion", proof).format(), content_type="text/plain")

    async def consistency(self, request: web.Request) -> web.Response:
        old, size = int(request.query["old"]), int(request.query["size"])
        proof = [base64.b64encode(h).decode() for h in merkle.prove_consistency(old, size, self.log.tree)]
        return web.json_response(self._answer("consistency", {"old": old, "size": size, "proof": proof}))

    async def entries(self, request: web.Request) -> web.Response:
        query = request.query
        start, end = int(query.get("start", 0)), int(query.get("end", self.log.tree.size))
        if query.get("bounds") == "1":
            rows = self._answer("bounded", _bounded(self.log.entries[start:end], query))
        else:
            rows = [e for e in self.log.entries[start:end] if _matches(json.loads(e), query)]
        rows = self._answer("entries", rows)
        if query.get("format") == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["seq", "action", "actor"])
            writer.writerows([json.loads(e)[k] for k in ("seq", "action", "actor")] for e in rows)
            return web.Response(text=out.getvalue(), content_type="text/csv")
        return web.Response(body=b"".join(e + b"\n" for e in rows), content_type="application/x-ndjson")

    async def leaves(self, request: web.Request) -> web.Response:
        start, end = int(request.query["start"]), int(request.query["end"])
        packed = merkle.packed_leaf_hashes(self.log.entries[start:end])
        return web.Response(body=self._answer("leaves", packed), content_type="application/octet-stream")


def _bounded(entries: list[bytes], query) -> list[bytes]:
    """The window's entries and the one just before and just after it, as the gateway sends them."""
    times = [datetime.fromisoformat(json.loads(e)["time"]) for e in entries]
    since, until = (datetime.fromisoformat(query.get(name, default)) for name, default in
                    (("since", "0001-01-01T00:00:00Z"), ("until", "9999-12-31T00:00:00Z")))  # fmt: skip
    first = next((i for i, t in enumerate(times) if t >= since), len(times))
    stop = next((i for i, t in enumerate(times) if t >= until), len(times))
    first -= "since" in query and first > 0
    stop += "until" in query and stop < len(times)
    return entries[first:stop]


def _matches(entry: dict, query) -> bool:
    fields = {"org": "org", "document": "object", "actor": "actor", "action": "action", "outcome": "outcome"}
    return all(entry[field] == query[name] for name, field in fields.items() if name in query)


@contextlib.contextmanager
def serving(gateway: Gateway) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(gateway.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, env) -> Iterator[Gateway]:
    gw = Gateway(Log(SIZE, seed=5))
    with serving(gw) as url:
        monkeypatch.setenv("CAREBRIDGE_URL", url)
        monkeypatch.setenv("CAREBRIDGE_TOKEN", TOKEN)
        yield gw


def bundle_members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


# -- export ------------------------------------------------------------------------------------


def test_export_full_bundle(gateway: Gateway, tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "audit.zip"
    code, out, err = run(capsys, "audit", "export", "-o", bundle)
    assert code == 0, err
    assert out == f"exported 40 entries to {bundle} (checkpoint of size 40)\n"
    assert bundle_members(bundle) == ["bundle.json", "checkpoint", "entries.jsonl", "leaves.bin"]
    assert members(bundle.read_bytes())["entries.jsonl"] == b"".join(e + b"\n" for e in gateway.log.entries)
    assert ok(capsys, "audit", "verify", bundle, "--key", gateway.log.verifier_key).startswith("OK: 40 entries")
    assert not list(tmp_path.glob(".*.part"))


def test_export_filtered_and_range_bundles(gateway: Gateway, tmp_path: Path, capsys) -> None:
    actor = json.loads(gateway.log.entries[7])["actor"]
    gateway.log.extend(3, actor=actor)
    summary = json.loads(ok(capsys, "audit", "export", "-o", tmp_path / "a.zip", "--actor", actor, "--json"))
    assert summary["entries"] == 4 and summary["full"] is False and summary["filters"] == {"actor": actor}
    assert bundle_members(tmp_path / "a.zip") == ["bundle.json", "checkpoint", "entries.jsonl", "proofs.jsonl"]
    key = ("--key", gateway.log.verifier_key)
    assert ok(capsys, "audit", "verify", tmp_path / "a.zip", *key).startswith("OK: 4 entries verified against "
                                                                        "checkpoint of size 43")  # fmt: skip
    ok(capsys, "audit", "export", "-o", tmp_path / "r.zip", "--start", 5, "--end", 12)
    out = ok(capsys, "audit", "verify", tmp_path / "r.zip", *key)
    assert out.startswith("OK: 7 entries") and "the range 5..11 proven complete" in out


def test_export_time_range_bundle(gateway: Gateway, tmp_path: Path, capsys) -> None:
    """A time window comes with its boundary entries (bounds=1), so the bundle proves it complete."""
    since, until = "2025-01-01T00:00:10Z", "2025-01-01T00:00:20Z"  # the entries are one a second
    summary = json.loads(ok(capsys, "audit", "export", "-o", tmp_path / "t.zip", "--since", since,
                            "--until", until, "--json"))  # fmt: skip
    assert summary["entries"] == 12 and summary["filters"] == {"since": since, "until": until}
    assert any("bounds=1" in r and "since=" in r for r in gateway.requests)
    seqs = [json.loads(line)["seq"] for line in lines(members((tmp_path / "t.zip").read_bytes())["entries.jsonl"])]
    assert seqs == list(range(9, 21))
    out = ok(capsys, "audit", "verify", tmp_path / "t.zip", "--key", gateway.log.verifier_key)
    assert "the range 9..20" in out and "proven complete (2 boundary entries)" in out
    key = ("--key", gateway.log.verifier_key)
    verdict = json.loads(ok(capsys, "audit", "verify", tmp_path / "t.zip", *key, "--json"))
    assert verdict["complete"] is True and verdict["filters"] == {"since": since, "until": until}


@pytest.mark.parametrize(("lie", "message"), [
    (lambda rows: rows[1:], r"entries 0\.\.9 are missing from the range .*before 'since'"),
    (lambda rows: rows[:-1], r"entries 20\.\.39 are missing from the range .*at or after 'until'"),
    (lambda rows: rows[:4] + rows[5:], r"entry 13 is missing from the range \(entry 14 follows entry 12\)"),
])  # fmt: skip
def test_export_catches_a_gateway_that_leaves_entries_out(gateway: Gateway, tmp_path: Path, capsys,
                                                         lie, message: str) -> None:  # fmt: skip
    gateway.lie["bounded"] = lie
    refusal = refused(capsys, "audit", "export", "-o", tmp_path / "t.zip", "--since", "2025-01-01T00:00:10Z",
                      "--until", "2025-01-01T00:00:20Z")  # fmt: skip
    assert re.search(r"was written but does not verify: " + message, refusal), refusal


def test_export_with_previous_and_verify(gateway: Gateway, tmp_path: Path, capsys) -> None:
    saved = tmp_path / "cp"
    assert ok(capsys, "audit", "checkpoint", "-o", saved, "--fresh") == f"saved the checkpoint of size 40 to {saved}\n"
    gateway.log.extend(25)
    for name, extra in (("full.zip", []), ("part.zip", ["--action", "auth"])):
        ok(capsys, "audit", "export", "-o", tmp_path / name, "--previous", saved, *extra)
        out = ok(capsys, "audit", "verify", tmp_path / name, "--previous", saved, "--key", gateway.log.verifier_key)
        assert "consistent with the previous checkpoint of size 40" in out
    consistency = json.loads(members((tmp_path / "part.zip").read_bytes())["bundle.json"])["consistency"]
    assert consistency["old_size"] == 40 and consistency["proof"]


def test_export_refuses_a_forked_log(gateway: Gateway, tmp_path: Path, capsys) -> None:
    saved = tmp_path / "cp"
    ok(capsys, "audit", "checkpoint", "-o", saved, "--fresh")
    gateway.log = Log(SIZE + 5, seed=99, signer=gateway.log.signer)  # same key, another history
    gateway.signed.clear()
    message = refused(capsys, "audit", "export", "-o", tmp_path / "a.zip", "--previous", saved)
    assert "does not verify: history rewritten" in message
    message = refused(capsys, "audit", "export", "-o", tmp_path / "b.zip", "--previous", saved, "--actor", "u_x")
    assert "does not verify" in message and "fork or rewritten history" in message  # no proof can join them
    assert (tmp_path / "b.zip").exists()  # kept: it is the evidence


def test_export_jsonl_and_csv(gateway: Gateway, tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "audit", "export", "-o", tmp_path / "log.jsonl")
    assert code == 0 and err == "exported 40 entries\n"
    assert (tmp_path / "log.jsonl").read_bytes() == b"".join(e + b"\n" for e in gateway.log.entries)
    code, out, err = run(capsys, "audit", "export", "--start", 3, "--end", 5)
    assert code == 0 and [json.loads(line)["seq"] for line in out.splitlines()] == [3, 4]
    code, _, err = run(capsys, "audit", "export", "-o", tmp_path / "log.csv")
    assert code == 0 and err == "exported 40 entries\n"
    assert "--previous goes with --format bundle" in refused(capsys, "audit", "export", "--previous", tmp_path)
    assert "a bundle is written to a file" in refused(capsys, "audit", "export", "--format", "bundle")


def test_pubkey(gateway: Gateway, capsys) -> None:
    info = json.loads(ok(capsys, "audit", "pubkey", "--json"))
    assert info["origin"] == ORIGIN and info["verifier_key"] == gateway.log.verifier_key
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){5}", info["fingerprint"])
    assert ok(capsys, "audit", "pubkey").splitlines()[1] == f"verifier key: {gateway.log.verifier_key}"


def _swap_entry(rows: list[bytes]) -> list[bytes]:
    return [rows[1], rows[0], *rows[2:]]


LIES = {
    "entries": (_swap_entry, "does not verify: entry 0 does not match leaf 0"),
    "leaves": (lambda packed: packed[:-32], "the gateway sent 1248 bytes of leaf hashes"),
    "checkpoint": (lambda _: Log(SIZE, seed=5).checkpoint(), "the gateway's fresh checkpoint is not a checkpoint"),
    "verifier": (lambda info: {**info, "verifier_key": "x"}, "the gateway's log verifier key is malformed"),
}  # fmt: skip


@pytest.mark.parametrize("endpoint", sorted(LIES))
def test_export_catches_a_lying_gateway(gateway: Gateway, tmp_path: Path, capsys, endpoint: str) -> None:
    change, message = LIES[endpoint]
    gateway.lie[endpoint] = change
    assert message in refused(capsys, "audit", "export", "-o", tmp_path / "audit.zip")
    if endpoint != "entries":  # that one is written, then fails its check: evidence for the officer
        assert not (tmp_path / "audit.zip").exists()
    assert not list(tmp_path.glob(".*.part"))


def test_export_catches_a_bad_inclusion_proof(gateway: Gateway, tmp_path: Path, capsys) -> None:
    gateway.lie["inclusion"] = lambda proof: TlogProof(index=proof.index, hashes=proof.hashes[::-1],
                                                        signed_checkpoint=proof.signed_checkpoint)
    message = refused(capsys, "audit", "export", "-o", tmp_path / "a.zip", "--start", 0, "--end", 9)
    assert re.match(r"the gateway's inclusion proof of entry \d+ does not verify", message)
    assert not (tmp_path / "a.zip").exists()


def test_export_reports_gateway_errors(gateway: Gateway, tmp_path: Path, capsys,
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CAREBRIDGE_TOKEN", "cb1.wrong")
    assert refused(capsys, "audit", "export", "-o", tmp_path / "a.zip") == "401 bad token"
    monkeypatch.delenv("CAREBRIDGE_URL")
    assert "CAREBRIDGE_URL" in refused(capsys, "audit", "pubkey")
