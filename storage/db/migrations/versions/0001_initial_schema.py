"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29

The access log is append-only from its first day: triggers refuse UPDATE,
DELETE (and on PostgreSQL TRUNCATE) on log_entries, whoever asks, and
PostgreSQL also takes those privileges away from PUBLIC.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('log_entries',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('time', UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('org', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('entry', sa.LargeBinary(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index('log_entries_actor', 'log_entries', ['actor', 'seq'], unique=False)
    op.create_index('log_entries_object', 'log_entries', ['object', 'seq'], unique=False)
    op.create_index('log_entries_time', 'log_entries', ['time'], unique=False)

    op.create_table('orgs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('referrals',
    sa.Column('clinic_org_id', sa.String(length=64), nullable=False),
    sa.Column('spa_org_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['clinic_org_id'], ['orgs.id'], ),
    sa.ForeignKeyConstraint(['spa_org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('clinic_org_id', 'spa_org_id')
    )
    op.create_table('users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('disabled_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('revoked_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)

    op.create_table('documents',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('sender_id', sa.String(length=64), nullable=False),
    sa.Column('sender_org_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('max_downloads', sa.Integer(), nullable=True),
    sa.Column('revoked_at', UTCDateTime(), nullable=True),
    sa.Column('purged_at', UTCDateTime(), nullable=True),
    sa.Column('content_key', sa.String(length=200), nullable=False),
    sa.Column('content_size', sa.BigInteger(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('meta_key', sa.String(length=200), nullable=False),
    sa.Column('meta_size', sa.BigInteger(), nullable=False),
    sa.Column('meta_sha256', sa.String(length=64), nullable=False),
    sa.Column('manifest', sa.LargeBinary(), nullable=False),
    sa.Column('policy', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['sender_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['sender_org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('documents_outbox', 'documents', ['sender_id', 'created_at', 'id'], unique=False)

    op.create_table('user_keys',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('age_recipient', sa.Text(), nullable=False),
    sa.Column('verify_key', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('registration', sa.LargeBinary(), nullable=False),
    sa.Column('log_seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('retired_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('user_keys_one_active', 'user_keys', ['user_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.create_table('document_recipients',
    sa.Column('document_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('age_recipient', sa.Text(), nullable=False),
    sa.Column('downloads', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('document_id', 'user_id')
    )
    op.create_index('document_recipients_inbox', 'document_recipients', ['user_id', 'document_id'], unique=False)

    _append_only_log()


def downgrade() -> None:
    raise RuntimeError("the initial schema holds the access log: it is never downgraded")


_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER log_entries_no_{verb.lower()} BEFORE {verb} ON log_entries
        BEGIN SELECT RAISE(ABORT, 'log_entries is append-only'); END"""
    for verb in ("UPDATE", "DELETE")
] + [
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers.
    """CREATE TRIGGER log_entries_no_replace BEFORE INSERT ON log_entries
       WHEN EXISTS (SELECT 1 FROM log_entries WHERE seq = NEW.seq)
       BEGIN SELECT RAISE(ABORT, 'log_entries is append-only'); END""",
]

_POSTGRES_TRIGGERS = [
    """CREATE FUNCTION log_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    """CREATE TRIGGER log_entries_no_change BEFORE UPDATE OR DELETE ON log_entries
       FOR EACH ROW EXECUTE FUNCTION log_entries_append_only()""",
    """CREATE TRIGGER log_entries_no_truncate BEFORE TRUNCATE ON log_entries
       FOR EACH STATEMENT EXECUTE FUNCTION log_entries_append_only()""",
    "REVOKE UPDATE, DELETE, TRUNCATE ON log_entries FROM PUBLIC",
]


def _append_only_log() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}[dialect]
    for statement in statements:
        op.execute(statement)
