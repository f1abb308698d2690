"""The C2SP CCTV age vectors (npm ``cctv-age``): every one, by failure class.

Each vector names the outcome a correct implementation reaches; we map each
``expect`` to our error class and check the SHA-256 of all plaintext released
before any payload failure, as the testkit asks.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass, field

from carebridge.crypto import age

EXPECT = {
    "success": None,
    "no match": age.NoIdentityMatchError,
    "HMAC failure": age.HeaderMACError,
    "header failure": age.HeaderError,
    "payload failure": age.PayloadError,
    "armor failure": age.ArmorError,
}


@dataclass
class Vector:
    expect: str
    body: bytes
    payload: str | None = None
    armored: bool = False
    identities: list = field(default_factory=list)


def parse_vector(data: bytes) -> Vector:
    head, _, body = data.partition(b"\n\n")
    fields = [line.split(": ", 1) for line in head.decode().splitlines()]
    values = {k: v for k, v in fields}
    identities = []
    for key, value in fields:
        if key == "identity":
            identities.append(age.parse_identity(value))
        elif key == "passphrase":
            identities.append(age.ScryptIdentity(value))
    if values.get("compressed") == "zlib":
        body = zlib.decompress(body)
    return Vector(
        values["expect"], body, values.get("payload"), values.get("armored") == "yes", identities
    )


def released_plaintext(vector: Vector) -> tuple[bytes, Exception | None]:
    out = io.BytesIO()
    try:
        for chunk in age.open_payload(
            io.BytesIO(vector.body), vector.identities, armor=vector.armored
        ):
            out.write(chunk)
    except age.AgeError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def outcome_problem(name: str, vector: Vector) -> str | None:
    """What is wrong with our handling of one vector, or None."""
    plaintext, error = released_plaintext(vector)
    expected = EXPECT[vector.expect]
    if expected is None and error is not None:
        return f"{name}: expected success, got {error!r}"
    if expected is not None and type(error) is not expected:
        return f"{name}: expected {expected.__name__}, got {error!r}"
    if vector.payload is not None:
        if hashlib.sha256(plaintext).hexdigest() != vector.payload:
            return f"{name}: released plaintext does not match the payload hash"
    elif plaintext:
        return f"{name}: released plaintext before a {vector.expect}"
    return None


def test_every_vector_reaches_its_expected_outcome(cctv_vectors):
    vectors = {name: parse_vector(data) for name, data in cctv_vectors.items()}
    assert sum(name.endswith("hybrid") or name.startswith("hybrid") for name in vectors) == 19
    problems = [p for name, v in sorted(vectors.items()) if (p := outcome_problem(name, v))]
    assert not problems, "\n".join(problems)


def test_every_parseable_header_round_trips(cctv_vectors):
    """Any vector that is not a header or armor failure re-serialises byte for byte."""
    checked = 0
    for name, data in sorted(cctv_vectors.items()):
        vector = parse_vector(data)
        if vector.armored or vector.expect in ("header failure", "armor failure"):
            continue
        src = io.BytesIO(vector.body)
        header = age.parse_header(src)
        assert header.marshal() == vector.body[: src.tell()], name
        checked += 1
    assert checked >= 50  # of cctv-age 0.2.0's 143 vectors


def test_armor_round_trips(cctv_vectors):
    """Armored success vectors decode, and re-armoring gives an equivalent block."""
    for name, data in sorted(cctv_vectors.items()):
        vector = parse_vector(data)
        if not vector.armored or vector.expect != "success":
            continue
        inner = age.armor.armored_reader(io.BytesIO(vector.body)).read()
        out = io.BytesIO()
        writer = age.armor.ArmorWriter(out)
        writer.write(inner)
        writer.close()
        normalised = vector.body.replace(b"\r\n", b"\n").strip()
        assert out.getvalue().strip() == normalised, name
