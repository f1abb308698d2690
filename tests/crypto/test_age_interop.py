"""Interop with the stock age CLI (Debian's age 1.1.1): both directions.

Promise 2 of docs/architecture.md: a recipient can open a carebridge document and
a carebridge key file with stock ``age`` and nothing else. Debian's age reads
passphrases from a terminal only, so the passphrase cases run it under
``pexpect``. Every test here needs the age binaries; under ``CI=true`` their
absence fails the test (conftest's ``age_cli`` / ``age_keygen`` fixtures).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pexpect
import pytest
from carebridge.crypto import age, keyfile

CHUNK = 64 * 1024
MULTI_CHUNK = 3 * CHUNK + 1234  # > 200 KB, four chunks, the last one short
PASSPHRASE = "interop passphrase 7"
FAST_LOG_N = 10  # age 1.1.1 accepts any work factor up to its own limit
TIMEOUT = 60
# The installed console script, beside the interpreter running the tests.
CAREBRIDGE = Path(sys.executable).parent / "carebridge"


def plaintext(size: int) -> bytes:
    return bytes((i * 131 + i // 7) % 251 for i in range(size))


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, timeout=TIMEOUT, check=False, **kwargs
    )


def ok(proc: subprocess.CompletedProcess) -> bytes:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def write_identity(path: Path, identity) -> Path:
    path.write_text(f"# test identity\n{identity.secret_string()}\n")
    return path


def age_on_terminal(
    age_cli: Path, args: list, passphrase: str, *, confirm: bool = False
) -> tuple[int, str]:
    """Run age on a terminal, answer its passphrase prompt(s); return (exit status, output)."""
    child = pexpect.spawn(str(age_cli), [str(a) for a in args], timeout=TIMEOUT)
    try:
        child.expect("(?i)passphrase")
        child.sendline(passphrase)
        if confirm:
            child.expect("(?i)confirm")
            child.sendline(passphrase)
        child.expect(pexpect.EOF)
        transcript = child.before.decode(errors="replace")
    finally:
        child.close()
    return child.exitstatus, transcript


def age_with_passphrase(
    age_cli: Path, args: list, passphrase: str, *, confirm: bool = False
) -> None:
    """age_on_terminal, requiring success."""
    status, transcript = age_on_terminal(age_cli, args, passphrase, confirm=confirm)
    assert status == 0, f"age {args} exited {status}: {transcript}"


def sealed_key_file(tmp_path: Path, *, log_n: int = FAST_LOG_N) -> tuple[Path, keyfile.UserKeys]:
    keys = keyfile.UserKeys.generate()
    path = tmp_path / "user.key"
    path.write_bytes(
        keyfile.seal(keys, PASSPHRASE, created=datetime.now(UTC), log_n=log_n)
    )
    return path, keys


# -- ours -> age ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "armor"),
    [
        (0, False),
        (1, False),
        (MULTI_CHUNK, False),
        (CHUNK, False),
        (0, True),
        (MULTI_CHUNK, True),
    ],
    ids=[
        "empty",
        "one-byte",
        "multi-chunk",
        "one-full-chunk",
        "empty-armored",
        "multi-chunk-armored",
    ],
)
def test_age_decrypts_what_we_encrypt(age_cli, tmp_path, size, armor):
    identity = age.X25519Identity.generate()
    data = plaintext(size)
    (tmp_path / "doc.age").write_bytes(age.encrypt_bytes(data, [identity.recipient], armor=armor))
    out = ok(
        run(
            age_cli, "-d", "-i", write_identity(tmp_path / "id.txt", identity), tmp_path / "doc.age"
        )
    )
    assert out == data


def test_age_decrypts_our_file_with_each_of_several_recipients(age_cli, tmp_path):
    identities = [age.X25519Identity.generate() for _ in range(3)]
    data = plaintext(MULTI_CHUNK)
    (tmp_path / "doc.age").write_bytes(age.encrypt_bytes(data, [i.recipient for i in identities]))
    for n, identity in enumerate(identities):
        id_file = write_identity(tmp_path / f"id{n}.txt", identity)
        assert ok(run(age_cli, "-d", "-i", id_file, tmp_path / "doc.age")) == data


def test_age_refuses_our_file_for_a_stranger_and_a_tampered_file(age_cli, tmp_path):
    # the negative control: age really checks what we write
    identity, stranger = age.X25519Identity.generate(), age.X25519Identity.generate()
    ciphertext = bytearray(age.encrypt_bytes(plaintext(MULTI_CHUNK), [identity.recipient]))
    (tmp_path / "doc.age").write_bytes(ciphertext)
    assert (
        run(
            age_cli, "-d", "-i", write_identity(tmp_path / "s.txt", stranger), tmp_path / "doc.age"
        ).returncode
        != 0
    )
    ciphertext[-100] ^= 0x01
    (tmp_path / "bad.age").write_bytes(ciphertext)
    assert (
        run(
            age_cli, "-d", "-i", write_identity(tmp_path / "id.txt", identity), tmp_path / "bad.age"
        ).returncode
        != 0
    )


def test_age_keygen_derives_our_recipient_from_our_identity(age_keygen, tmp_path):
    identity = age.X25519Identity.generate()
    out = ok(run(age_keygen, "-y", write_identity(tmp_path / "id.txt", identity)))
    assert out.decode().strip() == str(identity.recipient)


# -- age -> ours ------------------------------------------------------------------


@pytest.fixture
def age_identity(age_keygen, tmp_path) -> tuple[Path, str]:
    """An identity file made by age-keygen and its recipient (from age-keygen -y)."""
    path = tmp_path / "age-key.txt"
    ok(run(age_keygen, "-o", path))
    recipient = ok(run(age_keygen, "-y", path)).decode().strip()
    return path, recipient


def test_our_parser_reads_age_keygen_identity_files(age_identity):
    path, recipient = age_identity
    (identity,) = age.parse_identity_file(path.read_bytes())
    assert str(identity.recipient) == recipient


@pytest.mark.parametrize("size", [0, 1, MULTI_CHUNK])
@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_we_decrypt_age_dash_r(age_cli, age_identity, tmp_path, size, armor):
    path, recipient = age_identity
    data = plaintext(size)
    (tmp_path / "plain").write_bytes(data)
    ok(
        run(
            age_cli,
            "-e",
            "-r",
            recipient,
            *(["-a"] if armor else []),
            "-o",
            tmp_path / "doc.age",
            tmp_path / "plain",
        )
    )
    ciphertext = (tmp_path / "doc.age").read_bytes()
    assert age.is_armored(io.BufferedReader(io.BytesIO(ciphertext))) is armor
    identities = age.parse_identity_file(path.read_bytes())
    assert age.decrypt_bytes(ciphertext, identities, armor=armor) == data


def test_we_decrypt_age_dash_big_r_with_several_recipients(age_cli, age_identity, tmp_path):
    path, recipient = age_identity
    ours = age.X25519Identity.generate()
    (tmp_path / "recipients.txt").write_text(f"# team\n{recipient}\n\n{ours.recipient}\n")
    data = plaintext(MULTI_CHUNK)
    ciphertext = ok(run(age_cli, "-e", "-R", tmp_path / "recipients.txt", input=data))
    assert age.decrypt_bytes(ciphertext, [ours]) == data
    assert age.decrypt_bytes(ciphertext, age.parse_identity_file(path.read_bytes())) == data
    with pytest.raises(age.NoIdentityMatchError):
        age.decrypt_bytes(ciphertext, [age.X25519Identity.generate()])


def test_we_decrypt_age_dash_i_encryption(age_cli, age_identity):
    # age -e -i encrypts to the identity's own recipient
    path, _ = age_identity
    ciphertext = ok(run(age_cli, "-e", "-i", path, input=b"to myself"))
    assert age.decrypt_bytes(ciphertext, age.parse_identity_file(path.read_bytes())) == b"to myself"


def test_age_header_round_trips_through_our_parser(age_cli, age_identity):
    _, recipient = age_identity
    ciphertext = ok(
        run(
            age_cli,
            "-e",
            "-r",
            recipient,
            "-r",
            str(age.X25519Identity.generate().recipient),
            input=b"x",
        )
    )
    src = io.BytesIO(ciphertext)
    header = age.parse_header(src)
    assert header.marshal() == ciphertext[: src.tell()]
    assert [s.type for s in header.stanzas][:2] == ["X25519", "X25519"]


# -- passphrases, both ways (age reads them from a terminal) ---------------------------


def test_we_decrypt_age_dash_p(age_cli, tmp_path):
    # one run only: age uses work factor 18 (seconds of scrypt on each side)
    data = plaintext(CHUNK + 1)
    (tmp_path / "plain").write_bytes(data)
    age_with_passphrase(
        age_cli,
        ["-p", "-a", "-o", tmp_path / "doc.age", tmp_path / "plain"],
        PASSPHRASE,
        confirm=True,
    )
    ciphertext = (tmp_path / "doc.age").read_bytes()
    header = age.parse_header(age.armor.armored_reader(io.BytesIO(ciphertext)))
    assert [s.type for s in header.stanzas] == ["scrypt"]
    assert age.decrypt_bytes(ciphertext, [age.ScryptIdentity(PASSPHRASE)], armor=True) == data


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_age_decrypts_our_passphrase_file(age_cli, tmp_path, armor):
    data = plaintext(MULTI_CHUNK)
    recipient = age.ScryptRecipient(PASSPHRASE, log_n=FAST_LOG_N)
    (tmp_path / "doc.age").write_bytes(age.encrypt_bytes(data, [recipient], armor=armor))
    age_with_passphrase(age_cli, ["-d", "-o", tmp_path / "out", tmp_path / "doc.age"], PASSPHRASE)
    assert (tmp_path / "out").read_bytes() == data


def test_age_refuses_our_passphrase_file_with_the_wrong_passphrase(age_cli, tmp_path):
    recipient = age.ScryptRecipient(PASSPHRASE, log_n=FAST_LOG_N)
    (tmp_path / "doc.age").write_bytes(age.encrypt_bytes(b"data", [recipient]))
    status, transcript = age_on_terminal(
        age_cli, ["-d", "-o", tmp_path / "out", tmp_path / "doc.age"], "wrong"
    )
    assert status != 0
    assert (
        "incorrect passphrase" in transcript.lower() or "no identity matched" in transcript.lower()
    )
    assert not (tmp_path / "out").exists() or (tmp_path / "out").read_bytes() == b""


# -- our key files in age ------------------------------------------------------------


def test_age_opens_our_key_file_and_the_result_is_an_identity_file(age_cli, tmp_path):
    key_path, keys = sealed_key_file(tmp_path)
    age_with_passphrase(age_cli, ["-d", "-o", tmp_path / "id.txt", key_path], PASSPHRASE)
    identity_file = (tmp_path / "id.txt").read_bytes()
    assert keyfile.parse(identity_file).recipient == keys.recipient
    data = plaintext(MULTI_CHUNK)
    (tmp_path / "doc.age").write_bytes(age.encrypt_bytes(data, [keys.identity.recipient]))
    assert ok(run(age_cli, "-d", "-i", tmp_path / "id.txt", tmp_path / "doc.age")) == data


def test_age_decrypts_with_our_passphrase_protected_key_file_directly(age_cli, tmp_path):
    key_path, keys = sealed_key_file(tmp_path)
    data = plaintext(MULTI_CHUNK)
    (tmp_path / "doc.age").write_bytes(age.encrypt_bytes(data, [keys.identity.recipient]))
    age_with_passphrase(
        age_cli, ["-d", "-i", key_path, "-o", tmp_path / "out", tmp_path / "doc.age"], PASSPHRASE
    )
    assert (tmp_path / "out").read_bytes() == data


def test_age_opens_a_key_file_made_by_carebridge_keygen(age_cli, tmp_path):
    # the real command, default work factor: the promise as users meet it
    key_path = tmp_path / "keygen.key"
    proc = run(
        CAREBRIDGE,
        "keygen",
        "-o",
        key_path,
        "--json",
        env={**_base_env(), "CAREBRIDGE_PASSPHRASE": PASSPHRASE},
    )
    ok(proc)
    recipient = json.loads(proc.stdout)["recipient"]
    (tmp_path / "doc.age").write_bytes(
        age.encrypt_bytes(b"clinic summary", [age.parse_recipient(recipient)])
    )
    age_with_passphrase(
        age_cli, ["-d", "-i", key_path, "-o", tmp_path / "out", tmp_path / "doc.age"], PASSPHRASE
    )
    assert (tmp_path / "out").read_bytes() == b"clinic summary"


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CAREBRIDGE_PASSPHRASE"}


# -- age's identities in our CLI -------------------------------------------------------


def test_carebridge_decrypt_uses_age_keygen_identities(age_cli, age_identity, tmp_path):
    path, recipient = age_identity
    data = plaintext(MULTI_CHUNK)
    (tmp_path / "plain").write_bytes(data)
    ok(run(age_cli, "-e", "-r", recipient, "-a", "-o", tmp_path / "doc.age", tmp_path / "plain"))
    ok(
        run(
            CAREBRIDGE,
            "decrypt",
            "-i",
            path,
            "-o",
            tmp_path / "out",
            tmp_path / "doc.age",
            env=_base_env(),
        )
    )
    assert (tmp_path / "out").read_bytes() == data


def test_carebridge_encrypt_to_age_keygen_recipient_decrypts_with_age(
    age_cli, age_identity, tmp_path
):
    path, recipient = age_identity
    data = plaintext(MULTI_CHUNK)
    (tmp_path / "plain").write_bytes(data)
    ok(
        run(
            CAREBRIDGE,
            "encrypt",
            "-r",
            recipient,
            "-o",
            tmp_path / "doc.age",
            tmp_path / "plain",
            env=_base_env(),
        )
    )
    assert ok(run(age_cli, "-d", "-i", path, tmp_path / "doc.age")) == data
