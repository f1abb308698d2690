"""Merkle tree hashes and signed checkpoints for the access log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Adds log_hashes (the stored hashes of the RFC 6962 tree over log_entries) and
checkpoints, both append-only like the log, and computes the hashes of the
entries already in the log.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.crypto import merkle
from carebridge.storage.db.schema import UTCDateTime

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_TABLES = ("log_hashes", "checkpoints")
_BACKFILL_BATCH = 10_000


def upgrade() -> None:
    op.create_table(
        'log_hashes',
        sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('idx'),
    )
    op.create_table(
        'checkpoints',
        sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('note', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('size'),
    )
    _backfill()
    for table in _TABLES:
        _append_only(table)


def downgrade() -> None:
    raise RuntimeError("the Merkle tree of the access log is never downgraded")


def _backfill() -> None:
    """Hash the entries logged before this revision, in order."""
    conn = op.get_bind()
    tree = merkle.MemoryTree()
    rows = conn.execute(sa.text("SELECT leaf_hash FROM log_entries ORDER BY seq"))
    for (leaf,) in rows:
        tree.append_leaf_hash(bytes(leaf))
    hashes = tree.read_hashes(range(merkle.stored_hash_count(tree.size)))
    insert = sa.text("INSERT INTO log_hashes (idx, hash) VALUES (:idx, :hash)")
    for start in range(0, len(hashes), _BACKFILL_BATCH):
        conn.execute(insert, [{"idx": i, "hash": h}
                              for i, h in enumerate(hashes[start:start + _BACKFILL_BATCH], start)])


def _append_only(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                           BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")
        key = "idx" if table == "log_hashes" else "size"
        op.execute(f"""CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
                       WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key})
                       BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")
        return
    op.execute(f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
                   FOR EACH ROW EXECUTE FUNCTION log_entries_append_only()""")
    op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                   FOR EACH STATEMENT EXECUTE FUNCTION log_entries_append_only()""")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")
