"""The offline verbs of the ``carebridge`` command: keygen, encrypt, decrypt.

Driven through the installed console script in a subprocess, as a user
runs it, with ``CAREBRIDGE_PASSPHRASE`` in the environment. The contract:
age's flags and semantics; on failure exactly one ``carebridge: error:``
line on stderr, exit 1 (2 for usage), no traceback, no output file and no
temporary file left behind, and never a passphrase or secret key in the
message.

``keygen`` and ``encrypt -p`` use age's default scrypt work factor (18:
seconds per use), so they run a few times only; other key files are sealed
by the library with a small work factor (the CLI reads any).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import stat
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime
from pathlib import Path

import pytest
from carebridge.crypto import age, keyfile
from carebridge.crypto.fingerprint import fingerprint
from tests.waiting import wait_until

# The installed console script, beside the interpreter running the tests.
CAREBRIDGE = Path(sys.executable).parent / "carebridge"
PASSPHRASE = "cli passphrase Zq7"
FAST_LOG_N = 10
CHUNK = 64 * 1024
MULTI_CHUNK = 3 * CHUNK + 999
TIMEOUT = 60
# A fixed secret, so the leak checks below cannot pass or fail by chance.
FIXED = age.X25519Identity(bytes.fromhex("a5" * 16 + "3c" * 16))
SECRET_DATA = FIXED.secret_string()[len("AGE-SECRET-KEY-1"):]


def base_env(passphrase: str | None = PASSPHRASE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CAREBRIDGE_PASSPHRASE"}
    if passphrase is not None:
        env["CAREBRIDGE_PASSPHRASE"] = passphrase
    return env


def cli(*args, passphrase: str | None = PASSPHRASE, input: bytes | None = None,
        **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(CAREBRIDGE), *map(str, args)], input=input, capture_output=True,
                          env=base_env(passphrase), timeout=TIMEOUT, check=False, **kwargs)


def succeeded(proc: subprocess.CompletedProcess) -> bytes:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stderr
    return proc.stdout


def assert_failed(proc: subprocess.CompletedProcess, *, secrets: tuple[str, ...] = ()) -> str:
    """Exit 1, one `carebridge: error:` line, no traceback, no secret; returns the line."""
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, (proc.returncode, stderr)
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("carebridge: error: "), stderr
    for secret in (PASSPHRASE, FIXED.secret_string(), SECRET_DATA[:8], *secrets):
        assert secret not in stderr
        assert secret.encode() not in proc.stdout
    return lines[0]


def write_identity(path: Path, identity: age.X25519Identity | age.HybridIdentity) -> Path:
    path.write_text(f"# created by the test\n{identity.secret_string()}\n")
    return path


@pytest.fixture
def work(tmp_path) -> Path:
    """A folder with a multi-chunk plaintext `plain`; outputs go to `out/`."""
    (tmp_path / "plain").write_bytes(os.urandom(MULTI_CHUNK))
    (tmp_path / "out").mkdir()
    return tmp_path


@pytest.fixture
def identity(tmp_path) -> tuple[age.X25519Identity, Path]:
    ident = age.X25519Identity.generate()
    return ident, write_identity(tmp_path / "identity.txt", ident)


@pytest.fixture(scope="module")
def sealed_key(tmp_path_factory) -> tuple[keyfile.UserKeys, Path]:
    """A passphrase-protected key file, sealed by the library at a low work factor."""
    keys = keyfile.UserKeys.generate()
    path = tmp_path_factory.mktemp("sealed") / "user.key"
    path.write_bytes(keyfile.seal(keys, PASSPHRASE, created=datetime.now(UTC),
                                  log_n=FAST_LOG_N))
    return keys, path


@pytest.fixture(scope="module")
def keygen_json(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    """One real `carebridge keygen --json` run, shared by the keygen tests."""
    path = tmp_path_factory.mktemp("keygen") / "me.key"
    proc = cli("keygen", "-o", path, "--json")
    succeeded(proc)
    return path, json.loads(proc.stdout), proc


# -- keygen ---------------------------------------------------------------------------

def test_keygen_json_prints_one_document_that_matches_the_key_file(keygen_json):
    path, info, proc = keygen_json
    assert proc.stdout.decode().strip().count("\n") == 0  # one JSON document, one line
    assert proc.stderr == b""
    assert {"recipient", "signing_key", "recipient_fingerprint", "signing_key_fingerprint"} <= info.keys()
    assert info["recipient"].startswith("age1") and not info["recipient"].startswith("age1pq1")
    keys = keyfile.open_sealed(path.read_bytes(), PASSPHRASE)
    assert keys.recipient == info["recipient"]
    assert keys.verify_key.encode() == info["signing_key"]
    assert info["recipient_fingerprint"] == fingerprint(info["recipient"])
    assert info["signing_key_fingerprint"] == fingerprint(keys.verify_key)
    assert info["recipient_fingerprint"] != info["signing_key_fingerprint"]
    # nothing secret on stdout
    assert keys.identity.secret_string() not in proc.stdout.decode()
    assert keys.signing_key.encode() not in proc.stdout.decode()


def test_keygen_writes_a_private_armored_age_file(keygen_json):
    path, _, _ = keygen_json
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert b"AGE-SECRET-KEY" not in data and b"CAREBRIDGE-SIGNING-KEY" not in data
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_keygen_refuses_to_overwrite(keygen_json):
    path, _, _ = keygen_json
    before = path.read_bytes()
    assert_failed(cli("keygen", "-o", path))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_keygen_pq_makes_a_hybrid_key(tmp_path):
    path = tmp_path / "pq.key"
    out = succeeded(cli("keygen", "-o", path, "--pq")).decode()
    keys = keyfile.open_sealed(path.read_bytes(), PASSPHRASE)
    assert isinstance(keys.identity, age.HybridIdentity)
    assert keys.recipient.startswith("age1pq1")
    assert keys.recipient in out
    assert keys.identity.secret_string() not in out


def test_keygen_without_a_passphrase_fails_cleanly(tmp_path):
    # no CAREBRIDGE_PASSPHRASE and stdin is not a terminal
    assert_failed(cli("keygen", "-o", tmp_path / "k.key", passphrase=None,
                      stdin=subprocess.DEVNULL))
    assert list(tmp_path.iterdir()) == []


# -- encrypt / decrypt ------------------------------------------------------------------

def test_dash_r_round_trip_with_dash_o(work, identity):
    ident, id_file = identity
    succeeded(cli("encrypt", "-r", ident.recipient, "-o", work / "doc.age", work / "plain"))
    ciphertext = (work / "doc.age").read_bytes()
    assert ciphertext.startswith(b"age-encryption.org/v1\n")
    assert age.decrypt_bytes(ciphertext, [ident]) == (work / "plain").read_bytes()
    out = succeeded(cli("decrypt", "-i", id_file, "-o", work / "out" / "p", work / "doc.age"))
    assert out == b""
    assert (work / "out" / "p").read_bytes() == (work / "plain").read_bytes()


def test_several_dash_r_each_recipient_decrypts(work):
    idents = [age.X25519Identity.generate() for _ in range(3)]
    args = [a for i in idents for a in ("-r", i.recipient)]
    succeeded(cli("encrypt", *args, "-o", work / "doc.age", work / "plain"))
    for n, ident in enumerate(idents):
        id_file = write_identity(work / f"id{n}", ident)
        out = succeeded(cli("decrypt", "-i", id_file, work / "doc.age"))
        assert out == (work / "plain").read_bytes()


def test_dash_big_r_recipients_file(work, identity):
    ident, id_file = identity
    other = age.X25519Identity.generate()
    (work / "recipients").write_text(f"# the spa\n{ident.recipient}\n\n{other.recipient}\n")
    succeeded(cli("encrypt", "-R", work / "recipients", "-o", work / "doc.age", work / "plain"))
    ciphertext = (work / "doc.age").read_bytes()
    assert age.decrypt_bytes(ciphertext, [other]) == (work / "plain").read_bytes()
    assert succeeded(cli("decrypt", "-i", id_file, work / "doc.age")) == (work / "plain").read_bytes()


def test_hybrid_recipient_round_trip(work):
    ident = age.HybridIdentity.generate()
    id_file = write_identity(work / "pq.txt", ident)
    succeeded(cli("encrypt", "-r", ident.recipient, "-o", work / "doc.age", work / "plain"))
    header = age.parse_header(io.BytesIO((work / "doc.age").read_bytes()))
    assert [s.type for s in header.stanzas] == ["mlkem768x25519"]
    assert succeeded(cli("decrypt", "-i", id_file, work / "doc.age")) == (work / "plain").read_bytes()


def test_dash_i_plain_identity_file_encrypts_to_its_recipient(work, identity):
    ident, id_file = identity
    succeeded(cli("encrypt", "-i", id_file, "-o", work / "doc.age", work / "plain"))
    assert age.decrypt_bytes((work / "doc.age").read_bytes(), [ident]) == (work / "plain").read_bytes()


def test_dash_i_passphrase_protected_key_file(work, sealed_key):
    keys, key_path = sealed_key
    succeeded(cli("encrypt", "-i", key_path, "-o", work / "doc.age", work / "plain"))
    assert age.decrypt_bytes((work / "doc.age").read_bytes(), [keys.identity]) == \
        (work / "plain").read_bytes()
    out = succeeded(cli("decrypt", "-i", key_path, work / "doc.age"))
    assert out == (work / "plain").read_bytes()


def test_several_dash_i_the_matching_one_need_not_be_first(work, identity, sealed_key):
    ident, id_file = identity
    _, key_path = sealed_key
    stranger = write_identity(work / "stranger.txt", age.X25519Identity.generate())
    succeeded(cli("encrypt", "-r", ident.recipient, "-o", work / "doc.age", work / "plain"))
    out = succeeded(cli("decrypt", "-i", stranger, "-i", key_path, "-i", id_file, work / "doc.age"))
    assert out == (work / "plain").read_bytes()


def test_dash_p_round_trip(work):
    # the CLI's own work factor (18): the slowest test here, so one run
    succeeded(cli("encrypt", "-p", "-o", work / "doc.age", work / "plain"))
    header = age.parse_header(io.BytesIO((work / "doc.age").read_bytes()))
    assert [s.type for s in header.stanzas] == ["scrypt"]
    succeeded(cli("decrypt", "-o", work / "out" / "p", work / "doc.age"))
    assert (work / "out" / "p").read_bytes() == (work / "plain").read_bytes()


def test_decrypt_without_dash_i_opens_a_passphrase_file(work):
    data = (work / "plain").read_bytes()
    (work / "doc.age").write_bytes(age.encrypt_bytes(
        data, [age.ScryptRecipient(PASSPHRASE, log_n=FAST_LOG_N)], armor=True))
    assert succeeded(cli("decrypt", work / "doc.age")) == data


def test_dash_a_writes_armor_and_decrypt_detects_it(work, identity):
    ident, id_file = identity
    succeeded(cli("encrypt", "-a", "-r", ident.recipient, "-o", work / "doc.age", work / "plain"))
    armored = (work / "doc.age").read_bytes()
    assert armored.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert armored.endswith(b"-----END AGE ENCRYPTED FILE-----\n")
    assert age.decrypt_bytes(armored, [ident], armor=True) == (work / "plain").read_bytes()
    assert succeeded(cli("decrypt", "-i", id_file, work / "doc.age")) == (work / "plain").read_bytes()


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_stdin_to_stdout_both_ways(work, identity, armor):
    ident, id_file = identity
    data = (work / "plain").read_bytes()
    ciphertext = succeeded(cli("encrypt", "-r", ident.recipient, *(["-a"] if armor else []),
                               input=data))
    assert age.decrypt_bytes(ciphertext, [ident], armor=armor) == data
    assert succeeded(cli("decrypt", "-i", id_file, input=ciphertext)) == data
    # "-" names standard input and output explicitly
    assert succeeded(cli("decrypt", "-i", id_file, "-o", "-", "-", input=ciphertext)) == data


def unread(pipe) -> int:
    """How many bytes written to *pipe* its reader has not taken yet (Linux FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def test_armored_stdin_arriving_in_pieces(identity):
    # A pipe delivers what the writer has written so far; telling armor from
    # binary must not depend on how much arrived in the first read.
    ident, id_file = identity
    armored = age.encrypt_bytes(b"slowly", [ident.recipient], armor=True)
    proc = subprocess.Popen([str(CAREBRIDGE), "decrypt", "-i", str(id_file)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())
    proc.stdin.write(armored[:5])
    proc.stdin.flush()
    # Send the rest only once the CLI has taken the first five bytes out of the pipe,
    # so its first read surely got those alone (a fixed sleep could miss that on a busy machine).
    wait_until(lambda: proc.poll() is not None or unread(proc.stdin) == 0,
               what="the CLI to read the first five bytes from its stdin")
    out, err = proc.communicate(armored[5:], timeout=TIMEOUT)
    assert proc.returncode == 0, err.decode()
    assert out == b"slowly"


def test_decrypted_output_respects_the_umask(work, identity):
    # plaintext medical documents: a user with umask 077 must not get a
    # group- or world-readable file (age creates its output with 0666 &^ umask)
    ident, id_file = identity
    (work / "doc.age").write_bytes(age.encrypt_bytes(b"phi", [ident.recipient]))
    succeeded(cli("decrypt", "-i", id_file, "-o", work / "out" / "p", work / "doc.age",
                  preexec_fn=lambda: os.umask(0o077)))
    assert stat.S_IMODE((work / "out" / "p").stat().st_mode) & 0o077 == 0


# -- errors -------------------------------------------------------------------------------

def test_missing_recipients(work):
    line = assert_failed(cli("encrypt", "-o", work / "out" / "doc.age", work / "plain"))
    assert "recipient" in line
    assert list((work / "out").iterdir()) == []


@pytest.mark.parametrize("bad", [
    "age1notarecipient",
    "age1" + "q" * 58,
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ",
])
def test_bad_recipient_string(work, bad):
    line = assert_failed(cli("encrypt", "-r", bad, "-o", work / "out" / "doc.age", work / "plain"))
    assert "recipient" in line
    assert list((work / "out").iterdir()) == []


def test_mixing_post_quantum_and_classical_recipients_is_refused(work, identity):
    ident, _ = identity
    pq = age.HybridIdentity.generate().recipient
    assert_failed(cli("encrypt", "-r", pq, "-r", ident.recipient, "-o", work / "out" / "doc.age",
                      work / "plain"))
    assert list((work / "out").iterdir()) == []


def test_dash_p_with_recipients_is_refused(work, identity):
    ident, _ = identity
    assert_failed(cli("encrypt", "-p", "-r", ident.recipient, "-o", work / "out" / "doc.age",
                      work / "plain"))
    assert list((work / "out").iterdir()) == []


@pytest.mark.parametrize("verb", ["encrypt", "decrypt"])
def test_unreadable_input(work, identity, verb):
    ident, id_file = identity
    key_args = ["-r", ident.recipient] if verb == "encrypt" else ["-i", id_file]
    for missing in (work / "no-such-file", work / "out"):  # absent; a directory
        assert_failed(cli(verb, *key_args, "-o", work / "out" / "result", missing))
        assert list((work / "out").iterdir()) == []


def test_unwritable_output_folder(work, identity):
    ident, _ = identity
    line = assert_failed(cli("encrypt", "-r", ident.recipient, "-o", work / "nowhere" / "doc.age",
                             work / "plain"))
    assert "nowhere" in line


def test_wrong_passphrase_for_a_passphrase_file(work):
    (work / "doc.age").write_bytes(age.encrypt_bytes(
        b"x" * MULTI_CHUNK, [age.ScryptRecipient(PASSPHRASE, log_n=FAST_LOG_N)]))
    wrong = "not the passphrase 31"
    assert_failed(cli("decrypt", "-o", work / "out" / "p", work / "doc.age", passphrase=wrong),
                  secrets=(wrong,))
    assert list((work / "out").iterdir()) == []


def test_wrong_passphrase_for_a_key_file(work, sealed_key):
    keys, key_path = sealed_key
    (work / "doc.age").write_bytes(age.encrypt_bytes(b"x", [keys.identity.recipient]))
    wrong = "not the passphrase 32"
    line = assert_failed(cli("decrypt", "-i", key_path, "-o", work / "out" / "p", work / "doc.age",
                             passphrase=wrong),
                         secrets=(wrong, keys.identity.secret_string(), keys.signing_key.encode()))
    assert "passphrase" in line
    assert list((work / "out").iterdir()) == []


def test_missing_passphrase_without_a_terminal(work):
    (work / "doc.age").write_bytes(age.encrypt_bytes(
        b"x", [age.ScryptRecipient(PASSPHRASE, log_n=FAST_LOG_N)]))
    line = assert_failed(cli("decrypt", "-o", work / "out" / "p", work / "doc.age", passphrase=None,
                             stdin=subprocess.DEVNULL))
    assert "CAREBRIDGE_PASSPHRASE" in line
    assert list((work / "out").iterdir()) == []


def test_wrong_identity(work, identity):
    ident, _ = identity
    stranger = write_identity(work / "stranger.txt", age.X25519Identity.generate())
    (work / "doc.age").write_bytes(age.encrypt_bytes(b"x", [ident.recipient]))
    assert_failed(cli("decrypt", "-i", stranger, "-o", work / "out" / "p", work / "doc.age"))
    assert list((work / "out").iterdir()) == []


@pytest.mark.parametrize("where", ["third chunk", "last chunk", "header mac", "truncated"])
def test_corrupted_multi_chunk_ciphertext_leaves_no_output(work, identity, where):
    ident, id_file = identity
    ciphertext = bytearray(age.encrypt_bytes((work / "plain").read_bytes(), [ident.recipient]))
    src = io.BytesIO(bytes(ciphertext))
    age.parse_header(src)
    payload = src.tell() + 16
    if where == "third chunk":  # two chunks were already written when this fails
        ciphertext[payload + 2 * (CHUNK + 16) + 100] ^= 0x40
    elif where == "last chunk":
        ciphertext[-1] ^= 0x01
    elif where == "header mac":
        ciphertext[payload - 16 - 3] ^= 0x01
    else:
        del ciphertext[-20:]
    (work / "doc.age").write_bytes(bytes(ciphertext))
    assert_failed(cli("decrypt", "-i", id_file, "-o", work / "out" / "p", work / "doc.age"))
    assert list((work / "out").iterdir()) == []  # neither the output nor a .part file


def test_failed_decrypt_leaves_an_existing_output_untouched(work, identity):
    ident, id_file = identity
    ciphertext = bytearray(age.encrypt_bytes((work / "plain").read_bytes(), [ident.recipient]))
    ciphertext[-1] ^= 0x01
    (work / "doc.age").write_bytes(bytes(ciphertext))
    (work / "out" / "p").write_bytes(b"previous content")
    assert_failed(cli("decrypt", "-i", id_file, "-o", work / "out" / "p", work / "doc.age"))
    assert (work / "out" / "p").read_bytes() == b"previous content"
    assert [p.name for p in (work / "out").iterdir()] == ["p"]


def test_not_an_age_file(work, identity):
    _, id_file = identity
    line = assert_failed(cli("decrypt", "-i", id_file, "-o", work / "out" / "p", work / "plain"))
    assert "age" in line
    assert list((work / "out").iterdir()) == []


def test_usage_errors_exit_2_without_traceback(work):
    for args in (["encrypt", "--no-such-flag"], ["keygen"], ["no-such-verb"], []):
        proc = cli(*args)
        stderr = proc.stderr.decode()
        assert proc.returncode == 2, (args, stderr)
        assert "Traceback" not in stderr
        assert "error:" in stderr.splitlines()[-1]


# -- secrets never reach the error output --------------------------------------------------

def test_secret_key_given_as_a_recipient_is_not_echoed(work):
    line = assert_failed(cli("encrypt", "-r", FIXED.secret_string(), "-o", work / "out" / "x",
                             work / "plain"))
    assert not re.search(r"AGE-SECRET-KEY-1[0-9A-Z]", line), line
    assert SECRET_DATA[:4] not in line


@pytest.mark.parametrize("verb", ["encrypt", "decrypt"])
def test_secret_key_given_instead_of_an_identity_file_is_not_echoed(work, verb):
    line = assert_failed(cli(verb, "-i", FIXED.secret_string(), "-o", work / "out" / "x",
                             work / "plain"))
    assert not re.search(r"AGE-SECRET-KEY-1[0-9A-Z]", line), line


def test_identity_file_given_as_recipients_file_is_not_echoed(work):
    id_file = write_identity(work / "id.txt", FIXED)
    line = assert_failed(cli("encrypt", "-R", id_file, "-o", work / "out" / "x", work / "plain"))
    assert not re.search(r"AGE-SECRET-KEY-1[0-9A-Z]", line), line


def test_damaged_identity_file_is_not_echoed(work, identity):
    ident, _ = identity
    damaged = FIXED.secret_string()[:-1] + ("Q" if FIXED.secret_string()[-1] != "Q" else "P")
    (work / "bad-id.txt").write_text(f"# comment\n{damaged}\n")
    (work / "doc.age").write_bytes(age.encrypt_bytes(b"x", [ident.recipient]))
    line = assert_failed(cli("decrypt", "-i", work / "bad-id.txt", work / "doc.age"),
                         secrets=(damaged, damaged[16:30]))
    assert "line 2" in line


def test_console_script_is_installed():
    # the entry point named in pyproject.toml, not just the module
    assert CAREBRIDGE.is_file() and os.access(CAREBRIDGE, os.X_OK)
    proc = cli("--help")
    assert proc.returncode == 0 and b"keygen" in proc.stdout
