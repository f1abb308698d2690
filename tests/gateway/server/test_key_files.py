"""A user's key file on the server: stored sealed, fetched back by its owner only, replaced only
as the request says (If-Match), refused (and logged) when too large or not a passphrase-sealed
armored age file."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import pytest

from carebridge.crypto import age, keyfile
from carebridge.crypto.age.armor import ArmorWriter
from carebridge.crypto.keyfile import UserKeys
from carebridge.gateway.server.settings import SettingsError, load

from .conftest import DB_BACKENDS, Person, World, matching, rid
from .signin_helpers import enroll, sign_in

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

PATH = "/api/v1/me/key-file"
PASSPHRASE = "test-passphrase-orange-kettle"  # synthetic
LOG_N = 10  # cheap in tests; the format is the same


def sealed(keys: UserKeys | None = None) -> bytes:
    return keyfile.seal(keys or UserKeys.generate(), PASSPHRASE, created=datetime(2026, 12, 6, tzinfo=UTC),
                        log_n=LOG_N)


async def put(world: World, person: Person, body: bytes, headers: dict | None = None, request_id: str = ""):
    return await world.gw.request("PUT", PATH, token=person.token, data=body,
                                  headers={"Content-Type": "application/octet-stream",
                                           "X-Request-ID": request_id or rid(), **(headers or {})})


async def get(world: World, person: Person):
    return await world.gw.request("GET", PATH, token=person.token)


def armored(binary: bytes) -> bytes:
    out = io.BytesIO()
    writer = ArmorWriter(out)
    writer.write(binary)
    writer.close()
    return out.getvalue()


def with_work_factor(file: bytes, log_n: int) -> bytes:
    """The same armored scrypt file with its header claiming another work factor."""
    version, stanza, rest = dearmored(file).split(b"\n", 2)
    return armored(b"\n".join([version, stanza.rsplit(b" ", 1)[0] + b" " + str(log_n).encode(), rest]))


def dearmored(file: bytes) -> bytes:
    return age.armor.armored_reader(io.BytesIO(file)).read()


def header_only(file: bytes) -> bytes:
    binary = dearmored(file)
    return binary[:binary.index(b"\n", binary.index(b"\n---")) + 1]


async def test_round_trip_logged_and_opened_with_the_passphrase(world: World) -> None:
    person = world.recipient
    missing = rid()
    reply = await world.gw.request("GET", PATH, token=person.token, headers={"X-Request-ID": missing})
    assert reply.problem(404, "no-key-file")["reason"] == "no_key_file"

    keys = UserKeys.generate()
    body = sealed(keys)
    stored = await put(world, person, body)
    assert stored.status == 204, stored.body
    etag = stored.headers["ETag"]
    assert etag.startswith('"') and len(etag) == 66

    got = await get(world, person)
    assert got.status == 200 and got.content_type == "application/octet-stream"
    assert got.body == body and got.headers["ETag"] == etag
    assert got.headers["Cache-Control"] == "no-store"
    opened = keyfile.open_sealed(got.body, PASSPHRASE)  # the same identity comes back
    assert opened.recipient == keys.recipient and opened.verify_key == keys.verify_key

    entries = await world.audit()
    [deny] = matching(entries, request_id=missing)
    assert (deny["action"], deny["outcome"], deny["reason"]) == ("key.file.fetch", "deny", "no_key_file")
    for action in ("key.file.store", "key.file.fetch"):
        [entry] = matching(entries, action=action, outcome="allow")
        assert entry["actor"] == person.user_id and entry["object"] == person.user_id
    assert not any(PASSPHRASE in str(e) or "AGE-SECRET-KEY" in str(e) for e in entries)


async def test_other_users_cannot_read_it(world: World) -> None:
    assert (await put(world, world.recipient, sealed())).status == 204
    for other in (world.recipient2, world.uploader, world.auditor):
        assert (await get(world, other)).problem(404, "no-key-file")  # their own: there is none
    assert (await world.gw.request("GET", PATH)).problem(401, "unauthorized")
    mine = sealed()
    assert (await put(world, world.uploader, mine)).status == 204
    assert (await get(world, world.uploader)).body == mine
    assert (await get(world, world.recipient)).body != mine


async def test_the_default_limit_is_what_clients_open(world: World) -> None:
    reply = await put(world, world.recipient, b" " * (64 * 1024 + 1))
    assert reply.problem(413, "payload-too-large")["reason"] == "payload_too_large"
    assert (await get(world, world.recipient)).status == 404


async def in_pieces(body: bytes, size: int = 200):
    """*body* as a chunked upload (no Content-Length) whose pieces arrive one after another."""
    for start in range(0, len(body), size):
        yield body[start:start + size]
        await asyncio.sleep(0.02)


async def test_a_key_file_that_arrives_in_pieces_is_stored_whole(world: World) -> None:
    body = sealed()
    assert len(body) > 3 * 200
    stored = await put(world, world.recipient, in_pieces(body))
    assert stored.status == 204, stored.body  # not a prefix called malformed
    assert (await get(world, world.recipient)).body == body
    over = await put(world, world.recipient, in_pieces(b" " * (64 * 1024 + 1), size=16 * 1024))
    assert over.problem(413, "payload-too-large")  # no length announced: counted as it arrives
    assert (await get(world, world.recipient)).body == body


async def test_the_operator_may_lower_the_limit(world_factory) -> None:
    world = await world_factory(max_key_file_bytes=256)
    body = sealed()
    assert len(body) > 256  # a real key file, above the operator's ceiling
    assert (await put(world, world.recipient, body)).problem(413, "payload-too-large")
    assert (await get(world, world.recipient)).status == 404
    with pytest.raises(SettingsError, match="max_key_file_bytes"):
        load(overrides={"max_key_file_bytes": 64 * 1024 + 1})  # no client could open it


async def test_wrong_formats_are_refused_and_logged(world: World) -> None:
    keys = UserKeys.generate()
    good = sealed(keys)
    cases = {
        "not armored": b"AGE-SECRET-KEY-1QQQQ not a key file",
        "binary scrypt": age.encrypt_bytes(b"x" * 100, [age.ScryptRecipient(PASSPHRASE, log_n=LOG_N)]),
        "to a public key": age.encrypt_bytes(b"x" * 100, [keys.identity.recipient], armor=True),
        "work factor above 2^20": with_work_factor(good, 21),
        "no payload": armored(header_only(good)),
        "damaged armor": good.replace(b"-----END", b"!-----END"),
        "empty": b"",
    }
    ids = {}
    for name, body in cases.items():
        ids[name] = rid()
        reply = await put(world, world.recipient, body, request_id=ids[name])
        assert reply.problem(422, "invalid-key-file")["reason"] == "invalid_key_file", name
    assert (await get(world, world.recipient)).status == 404
    entries = await world.audit()
    for name, request_id in ids.items():
        [entry] = matching(entries, request_id=request_id)
        assert (entry["action"], entry["outcome"], entry["reason"]) == \
            ("key.file.store", "deny", "invalid_key_file"), name
    # the shape check is not the passphrase: a well-formed file at the ceiling still passes
    assert (await put(world, world.recipient, with_work_factor(good, 20))).status == 204


async def test_if_match_makes_replacement_safe(world: World) -> None:
    person = world.recipient
    first = await put(world, person, sealed(), {"If-None-Match": "*"})
    assert first.status == 204
    again = await put(world, person, sealed(), {"If-None-Match": "*"})
    assert again.problem(412, "key-file-changed")["reason"] == "key_file_changed"

    second_body = sealed()
    second = await put(world, person, second_body, {"If-Match": first.headers["ETag"]})
    assert second.status == 204 and second.headers["ETag"] != first.headers["ETag"]
    stale_id = rid()
    stale = await put(world, person, sealed(), {"If-Match": first.headers["ETag"]}, request_id=stale_id)
    assert stale.problem(412, "key-file-changed")
    assert (await get(world, person)).body == second_body  # the stale write changed nothing
    [entry] = matching(await world.audit(), request_id=stale_id)
    assert (entry["action"], entry["outcome"], entry["reason"]) == ("key.file.store", "deny", "key_file_changed")

    # several tags, one of them current; and * means "whatever is stored"
    both = f'{first.headers["ETag"]}, {second.headers["ETag"]}'
    assert (await put(world, person, sealed(), {"If-Match": both})).status == 204
    assert (await put(world, person, sealed(), {"If-Match": "*"})).status == 204
    # * with nothing stored, malformed tags
    assert (await put(world, world.recipient2, sealed(), {"If-Match": "*"})).problem(412, "key-file-changed")
    for bad in ('W/"' + "0" * 64 + '"', "abc", '"' + "0" * 63 + '"'):
        assert (await put(world, person, sealed(), {"If-Match": bad})).problem(422, "invalid-request")
    assert (await put(world, person, sealed(), {"If-None-Match": '"x"'})).problem(422, "invalid-request")


async def test_a_signed_in_browser_stores_and_fetches_with_csrf(world: World) -> None:
    person = world.recipient2
    browser = await sign_in(world, person, await enroll(world, person))
    body = sealed()
    no_csrf = await world.gw.request("PUT", PATH, data=body, headers=browser.headers(csrf=False))
    assert no_csrf.problem(403, "csrf")
    foreign = await world.gw.request("PUT", PATH, data=body,
                                     headers=browser.headers(origin="https://evil.example.test"))
    assert foreign.problem(403, "csrf")
    assert (await browser.request("GET", PATH)).status == 404
    assert (await browser.request("PUT", PATH, data=body)).status == 204
    got = await browser.request("GET", PATH)
    assert got.status == 200 and got.body == body
    assert (await get(world, person)).body == body  # the CLI's token sees the same file
