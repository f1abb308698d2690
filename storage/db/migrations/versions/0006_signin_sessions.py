"""Sign-in for people: credentials, enrollment links, sessions, an org setting

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

- orgs.recipient_totp: 1 (the default) when the organisation's recipients must
  set up a TOTP second factor; uploaders, auditors and admins always must.
- user_credentials: a user's Argon2id password hash, TOTP secret and the last
  TOTP time step accepted (no code is accepted twice).
- enrollments: one-time enrollment links (only the SHA-256 of the secret).
- sessions: browser sessions (only the SHA-256 of the cookie's secret).
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orgs') as batch:
        batch.add_column(sa.Column('recipient_totp', sa.Integer(), server_default='1', nullable=False))
    op.create_table(
        'user_credentials',
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('totp_secret', sa.String(length=64), nullable=True),
        sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_table(
        'enrollments',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('totp_secret', sa.String(length=64), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_enrollments_user_id', 'enrollments', ['user_id'])
    op.create_table(
        'sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('last_seen_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.Column('end_reason', sa.String(length=20), nullable=True),
        sa.Column('user_agent', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('secret_hash'),
    )
    op.create_index('ix_sessions_user_id', 'sessions', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_sessions_user_id', table_name='sessions')
    op.drop_table('sessions')
    op.drop_index('ix_enrollments_user_id', table_name='enrollments')
    op.drop_table('enrollments')
    op.drop_table('user_credentials')
    with op.batch_alter_table('orgs') as batch:
        batch.drop_column('recipient_totp')
