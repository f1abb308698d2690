"""A redaction profile per clinic: the signed documents, one row per version

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

- redaction_profiles: each organisation's signed redaction profiles
  (opaque to the server but for id and version), keyed by (org_id, version);
  the highest version is the current one. Rows are never changed: the history
  stays as proof of what a sender was bound to.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'redaction_profiles',
        sa.Column('org_id', sa.String(length=64), sa.ForeignKey('orgs.id'), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.Column('profile_id', sa.String(length=64), nullable=False),
        sa.Column('signer_id', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('document', sa.LargeBinary(), nullable=False),
        sa.Column('log_seq', sa.BigInteger(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('org_id', 'version'),
    )


def downgrade() -> None:
    op.drop_table('redaction_profiles')
