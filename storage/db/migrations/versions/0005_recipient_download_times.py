"""When each recipient first and last downloaded a document

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

The sender's outbox shows, per recipient, whether and when they downloaded;
the count alone said only whether. Set in the same conditional UPDATE that
counts the download, so a refused download moves neither.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('document_recipients') as batch:
        batch.add_column(sa.Column('first_downloaded_at', UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('last_downloaded_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('document_recipients') as batch:
        batch.drop_column('last_downloaded_at')
        batch.drop_column('first_downloaded_at')
