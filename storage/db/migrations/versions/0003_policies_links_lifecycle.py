"""Policy v2 state, expiring links, the mail outbox and job leases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

- documents: not_before, max_total_downloads, downloads_total, legal_hold and
  purge_after (when the purge job may delete the ciphertext), with an index for
  the job. Existing documents become purgeable at their expiry (or revocation)
  plus the default retention, which the job applies when purge_after is NULL.
- document_recipients.revoked_at: revocation for one recipient.
- links: the server-side record of each expiring link (id = jti).
- mail_outbox: notifications, retried until sent or given up.
- job_leases: one holder per background job across gateway processes.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('documents') as batch:
        batch.add_column(sa.Column('not_before', UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('max_total_downloads', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('downloads_total', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('legal_hold', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('purge_after', UTCDateTime(), nullable=True))
    op.create_index('documents_purge_due', 'documents', ['purge_after'])
    with op.batch_alter_table('document_recipients') as batch:
        batch.add_column(sa.Column('revoked_at', UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE documents SET downloads_total = (SELECT COALESCE(SUM(r.downloads), 0)"
        " FROM document_recipients r WHERE r.document_id = documents.id)"
    )
    op.create_table(
        'links',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('document_id', sa.String(length=64), sa.ForeignKey('documents.id'), nullable=False),
        sa.Column('recipient_id', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('issued_by', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('mode', sa.String(length=10), nullable=False),
        sa.Column('kid', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('not_before', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('max_uses', sa.Integer(), nullable=False),
        sa.Column('uses', sa.Integer(), server_default='0', nullable=False),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_links_document_id', 'links', ['document_id'])
    op.create_table(
        'mail_outbox',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('to_address', sa.String(length=320), nullable=False),
        sa.Column('document_id', sa.String(length=64), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.Column('failed_at', UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('mail_outbox_due', 'mail_outbox', ['sent_at', 'failed_at', 'next_attempt_at'])
    op.create_table(
        'job_leases',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=64), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('job_leases')
    op.drop_index('mail_outbox_due', table_name='mail_outbox')
    op.drop_table('mail_outbox')
    op.drop_index('ix_links_document_id', table_name='links')
    op.drop_table('links')
    with op.batch_alter_table('document_recipients') as batch:
        batch.drop_column('revoked_at')
    op.drop_index('documents_purge_due', table_name='documents')
    with op.batch_alter_table('documents') as batch:
        for column in ('purge_after', 'legal_hold', 'downloads_total', 'max_total_downloads', 'not_before'):
            batch.drop_column(column)
