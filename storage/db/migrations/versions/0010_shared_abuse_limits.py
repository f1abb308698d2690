"""Abuse limits shared by every gateway process: failed authentications and rate buckets

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06

- auth_failures: failed authentications per key (a client address, a token
  id, an account) in the current window, and the lockout they started;
- rate_buckets: a token bucket per key (link claims per client address).

Both were per process (in memory); with several gateway processes on one
database each limit must hold across all of them.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'auth_failures',
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('window_start', UTCDateTime(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('locked_until', UTCDateTime(), nullable=True),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('auth_failures_expiry', 'auth_failures', ['expires_at'])
    op.create_table(
        'rate_buckets',
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('tokens', sa.Float(), nullable=False),
        sa.Column('stamp', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('rate_buckets_expiry', 'rate_buckets', ['expires_at'])


def downgrade() -> None:
    op.drop_index('rate_buckets_expiry', 'rate_buckets')
    op.drop_table('rate_buckets')
    op.drop_index('auth_failures_expiry', 'auth_failures')
    op.drop_table('auth_failures')
