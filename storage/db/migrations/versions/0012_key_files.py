"""Each user's key file, stored sealed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

- key_files: one armored age file per user, sealed by the user's passphrase
  (age scrypt); the server keeps it opaque, with its SHA-256 (the ETag a
  replacement must name) and the log entry that stored it.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'key_files',
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('users.id'), primary_key=True),
        sa.Column('sealed', sa.LargeBinary(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('log_seq', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('key_files')
