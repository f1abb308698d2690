"""TOTP secrets at rest (issue 13): sealed under the gateway's key, bound to their user, never usable from the database.

A copy of the database must not let anyone compute a person's codes: every
stored value is scanned for one that pyotp would take as the secret. Secrets
stored in plain text before sealing existed are sealed at start, and still
sign the person in.
"""

from __future__ import annotations

import base64
import binascii
import stat
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from carebridge.crypto.errors import SealedValueError
from carebridge.crypto.sealed import SealingKey, is_sealed
from carebridge.gateway.server import totp_secrets
from carebridge.gateway.server.context import SERVICES
from carebridge.storage.db.schema import metadata

from .conftest import DB_BACKENDS, World
from .signin_helpers import CSRF, PASSWORD, code_now, enroll, enrollment_token, sign_in, sign_in_reply


def _stored_strings(conn) -> list[str]:
    """Every text value in every table of the database."""
    found = []
    for table in metadata.sorted_tables:
        for row in conn.execute(select(table)):
            found += [value for value in row if isinstance(value, str)]
    return found


def _works_as_secret(value: str, secret: str, at) -> bool:
    """Whether pyotp, given *value* as the secret, makes the same codes as *secret* does."""
    try:
        base64.b32decode(value.upper() + "=" * (-len(value) % 8))
        candidate, real = pyotp.TOTP(value), pyotp.TOTP(secret)
        return all(candidate.at(at + timedelta(seconds=30 * step)) == real.at(at + timedelta(seconds=30 * step))
                   for step in range(3))
    except (binascii.Error, ValueError):
        return False


@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
async def test_the_database_holds_no_secret_an_authenticator_would_take(world: World) -> None:
    confirmed = await enroll(world, world.uploader)
    token = await enrollment_token(world, world.auditor.email)  # offered, not yet confirmed
    offer = await world.gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)
    offered = offer.json()["totp_secret"]
    stored = await world.gw.store.read(_stored_strings)
    for secret in (confirmed, offered):
        assert not any(secret in value for value in stored)
        assert not any(_works_as_secret(value, secret, world.clock.now) for value in stored)
        assert _works_as_secret(secret, secret, world.clock.now)  # the check can fail
    sealed = await world.gw.store.query(lambda db: db.accounts.stored_totp_secrets())
    assert sorted(row.table for row in sealed) == ["enrollments", "enrollments", "user_credentials"]
    assert all(is_sealed(row.value) for row in sealed)
    await sign_in(world, world.uploader, confirmed)  # and the sealed secret still signs in
    key_file = world.gw.settings.keys_dir / totp_secrets.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # the key lives beside the log key, not in the database


@pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)
async def test_a_sealed_secret_opens_only_for_its_user_and_key(world: World) -> None:
    secrets = world.gw.app[SERVICES].totp
    sealed = secrets.seal("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", world.uploader.user_id)
    assert secrets.open(sealed, world.uploader.user_id) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert sealed != secrets.seal("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", world.uploader.user_id)  # fresh nonces
    with pytest.raises(SealedValueError):
        secrets.open(sealed, world.recipient.user_id)  # moved to another user's row
    with pytest.raises(SealedValueError):
        totp_secrets.TotpSecrets(SealingKey.generate()).open(sealed, world.uploader.user_id)
    with pytest.raises(SealedValueError):
        secrets.open(sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1], world.uploader.user_id)
    with pytest.raises(SealedValueError):
        secrets.open("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", world.uploader.user_id)  # plain text is not sealed


@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
async def test_plain_secrets_from_before_are_sealed_at_start_and_still_sign_in(world: World) -> None:
    secret = await enroll(world, world.uploader)
    plain = pyotp.random_base32(32)

    def unseal(tx) -> None:  # as a gateway before sealing stored it
        [row] = [r for r in tx.accounts.stored_totp_secrets()
                 if r.table == "user_credentials" and r.user_id == world.uploader.user_id]
        tx.accounts.replace_totp_secret(row, plain)

    await world.gw.store.write(unseal)
    assert plain in await world.gw.store.read(_stored_strings)
    assert await totp_secrets.seal_plain_secrets(world.gw.store, world.gw.app[SERVICES].totp) == 1  # as at start
    stored = await world.gw.store.read(_stored_strings)
    assert not any(_works_as_secret(value, plain, world.clock.now) for value in stored)
    assert await totp_secrets.seal_plain_secrets(world.gw.store, world.gw.app[SERVICES].totp) == 0
    reply = await sign_in_reply(world, world.uploader.email, PASSWORD, code_now(world, plain))
    assert reply.status == 200, reply.body
    (await sign_in_reply(world, world.uploader.email, PASSWORD, code_now(world, secret))).problem(401, "sign-in-failed")
