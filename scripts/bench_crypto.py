#!/usr/bin/env python3
"""Benchmark: age encryption and decryption, ours against the stock age CLI.

Both run as whole commands, file to file, in the same run and on the same
files: ``carebridge encrypt|decrypt`` and ``age -e|-d``. Each measurement is
repeated and the median is printed (this machine is shared and noisy), with
the ratio age_time / our_time (>= 1.0 means we are at least as fast). Then the
peak RSS of ``carebridge encrypt`` and ``decrypt`` over a 1 GiB stream.

    .venv/bin/python scripts/bench_crypto.py [--size-mib 256] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSPHRASE = "bench-passphrase-not-a-secret"
MIB = 1 << 20


def run(cmd: list[str], *, env: dict[str, str], stdin=None, stdout=None,
        ok: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """Run *cmd*; return (wall seconds, peak RSS in bytes) of that process alone.

    Exits the benchmark when the status is not in *ok*.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=stdin, stdout=stdout or subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in ok:
        sys.exit(f"bench: {' '.join(cmd[:2])} failed: {proc.stderr.read().decode().strip()}")
    return elapsed, usage.ru_maxrss * 1024


def timed_pair(ours: list[str], theirs: list[str], output: Path, *, env: dict[str, str],
               repeat: int) -> tuple[float, float]:
    """Median seconds of each command, runs interleaved so drift hits both alike.

    Before each run the output is removed (both tools then create a file, not
    truncate one) and dirty pages are flushed (untimed), so neither tool pays
    for the other's writeback.
    """
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeat):
        for which, cmd in enumerate((ours, theirs)):
            output.unlink(missing_ok=True)
            os.sync()
            times[which].append(run(cmd, env=env)[0])
    return statistics.median(times[0]), statistics.median(times[1])


def same_file(a: Path, b: Path) -> bool:
    """Compare in chunks: a large read here would inflate the children's peak RSS
    (Linux carries the parent's peak across fork and exec)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(MIB), fb.read(MIB)
            if x != y:
                return False
            if not x:
                return True


def make_keys(work: Path, env: dict[str, str]) -> tuple[str, Path]:
    identity = work / "age-identity.txt"
    identity.unlink(missing_ok=True)
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                               capture_output=True, text=True).stdout.strip()
    return recipient, identity


def throughput_table(work: Path, size: int, repeat: int, env: dict[str, str], ours: str) -> None:
    recipient, identity = make_keys(work, env)
    plain = work / "plain.bin"
    with open(plain, "wb") as out:
        for _ in range(size // MIB):
            out.write(os.urandom(MIB))
    sealed, out = work / "sealed.age", work / "out.bin"
    rows = []
    for name, ours_cmd, age_cmd in [
        ("encrypt", [ours, "encrypt", "-r", recipient, "-o", str(sealed), str(plain)],
         ["age", "-e", "-r", recipient, "-o", str(sealed), str(plain)]),
        # the file age wrote last is the input: each tool decrypts the other's output too
        ("decrypt", [ours, "decrypt", "-i", str(identity), "-o", str(out), str(sealed)],
         ["age", "-d", "-i", str(identity), "-o", str(out), str(sealed)]),
    ]:
        output = sealed if name == "encrypt" else out
        t_ours, t_age = timed_pair(ours_cmd, age_cmd, output, env=env, repeat=repeat)
        rows.append((name, size / MIB / t_ours, size / MIB / t_age, t_age / t_ours))
    if not same_file(out, plain):
        sys.exit("bench: round trip mismatch")
    rows += library_rows(work, plain, sealed, out, recipient, identity, size, repeat, env)
    print(f"{size // MIB} MiB file to file, median of {repeat} (MiB/s):")
    print(f"  {'':8} {'carebridge':>11} {'age CLI':>9} {'ratio':>6}")
    for name, ours_rate, age_rate, ratio in rows:
        print(f"  {name:8} {ours_rate:11.0f} {age_rate:9.0f} {ratio:6.2f}")
    print("  (ratio = age time / our time; * = our library in-process, without"
          " the ~0.1-0.2 s Python start-up, against the whole age command)")


def library_rows(work: Path, plain: Path, sealed: Path, out: Path, recipient: str,
                 identity: Path, size: int, repeat: int, env: dict[str, str]) -> list:
    """The same work through the library in this process: no interpreter start-up."""
    from carebridge.crypto import age

    recipients = [age.parse_recipient(recipient)]
    identities = age.parse_identity_file(identity.read_bytes())
    rows = []
    for name, age_cmd, call, output in [
        ("encrypt*", ["age", "-e", "-r", recipient, "-o", str(sealed), str(plain)],
         lambda s, d: age.encrypt(s, d, recipients), sealed),
        ("decrypt*", ["age", "-d", "-i", str(identity), "-o", str(out), str(sealed)],
         lambda s, d: age.decrypt(s, d, identities), out),
    ]:
        source = plain if name == "encrypt*" else sealed
        ours, theirs = [], []
        for _ in range(repeat):
            output.unlink(missing_ok=True)
            os.sync()
            theirs.append(run(age_cmd, env=env)[0])
            if name == "encrypt*":  # decrypt reads what age just wrote, so keep it
                output.unlink(missing_ok=True)
                os.sync()
            target = output if name == "encrypt*" else work / "lib.out"
            target.unlink(missing_ok=True)
            os.sync()
            start = time.perf_counter()
            with open(source, "rb") as src, open(target, "wb") as dst:
                call(src, dst)
            ours.append(time.perf_counter() - start)
        t_ours, t_age = statistics.median(ours), statistics.median(theirs)
        rows.append((name, size / MIB / t_ours, size / MIB / t_age, t_age / t_ours))
    return rows


def peak_rss(work: Path, env: dict[str, str], ours: str) -> None:
    recipient, identity = make_keys(work, env)
    gib = 1 << 30
    sealed = work / "gib.age"
    with subprocess.Popen(["head", "-c", str(gib), "/dev/zero"], stdout=subprocess.PIPE) as head:
        _, enc_rss = run([ours, "encrypt", "-r", recipient, "-o", str(sealed)],
                         env=env, stdin=head.stdout)
    _, dec_rss = run([ours, "decrypt", "-i", str(identity), str(sealed)], env=env)
    print(f"1 GiB stream, peak RSS of carebridge: encrypt {enc_rss / MIB:.1f} MiB,"
          f" decrypt {dec_rss / MIB:.1f} MiB (goal < 64 MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="work folder (default: tmpfs, so that disk writeback and"
                             " discard, which swing by 2x here, do not drown the crypto)")
    args = parser.parse_args()
    # The console script beside this interpreter: a PATH lookup may find a
    # version-manager shim that adds a few hundred milliseconds to every run.
    ours = str(Path(sys.executable).with_name("carebridge"))
    if not os.access(ours, os.X_OK):
        sys.exit(f"bench: {ours} missing: run with the venv's python (make bootstrap)")
    shutil.which("age") or sys.exit("bench: the age CLI is not installed (apt install age)")
    env = {**os.environ, "CAREBRIDGE_PASSPHRASE": PASSPHRASE}
    with tempfile.TemporaryDirectory(prefix="bench-crypto-", dir=args.dir) as tmp:
        throughput_table(Path(tmp), args.size_mib * MIB, args.repeat, env, ours)
        if not args.skip_rss:
            peak_rss(Path(tmp), env, ours)


if __name__ == "__main__":
    main()
