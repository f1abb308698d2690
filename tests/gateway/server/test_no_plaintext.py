"""Promise 1: a full copy of the server's disk, database and bucket reveals no document.

A document whose content, file name and note carry unique markers is sent
and fetched; then every file under ``data_dir`` (SQLite database and WAL
included), every row of every PostgreSQL table and every object in the
bucket is read, and none holds a marker (raw, or hex as PostgreSQL prints
``bytea``). The document id, which *is* stored, proves the scan reaches the
metadata.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions

from .conftest import Gateway, World


def server_bytes(gw: Gateway) -> dict[str, bytes]:
    """Everything the server keeps, by where it lies."""
    found = {str(p): p.read_bytes() for p in gw.settings.data_dir.rglob("*") if p.is_file()}
    if gw.pg_url is not None:
        import psycopg

        with psycopg.connect(gw.pg_url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                rows = conn.execute(f'SELECT t::text FROM "{table}" AS t').fetchall()
                found[f"pg:{table}"] = "\n".join(r[0] for r in rows).encode()
    if gw.s3 is not None:
        for key in gw.s3_objects():
            found[f"s3:{key}"] = gw.s3.get_object(Bucket=gw.bucket, Key=key)["Body"].read()
    return found


async def test_no_plaintext_at_rest(world: World, tmp_path: Path) -> None:
    marker = f"TEST-CONTENT-MARKER-{secrets.token_hex(12)}"
    name = f"TEST-FILENAME-{secrets.token_hex(12)}.pdf"
    note = f"TEST-NOTE-MARKER-{secrets.token_hex(12)}"
    source = tmp_path / name
    source.write_bytes(b"%PDF-1.4\nTEST PATIENT\n" + marker.encode() + b"\n" * 3)
    sent = await transfer.send(world.uploader.client, world.uploader.keys, source, [world.recipient.email],
                               SendOptions(note=note, unsafe_skip_redaction_gate=True))
    out = tmp_path / "fetched.pdf"
    fetched = await transfer.fetch(world.recipient.client, world.recipient.keys, sent["id"], output=out, raw=False)
    assert (fetched.name, fetched.note) == (name, note) and marker.encode() in out.read_bytes()

    stored = server_bytes(world.gw)
    everything = b"\n".join(stored.values())
    assert sent["id"].encode() in everything, "the scan missed the metadata store"
    assert any(key.startswith(("s3:", str(world.gw.settings.blobs_dir))) for key in stored)
    if world.gw.pg_url is None:
        assert any(key.endswith("carebridge.db") for key in stored)
    for secret in (marker, name, note):
        for form in (secret.encode(), secret.encode().hex().encode()):
            holders = [where for where, data in stored.items() if form in data]
            assert holders == [], f"{secret} stored in plaintext in {holders}"
