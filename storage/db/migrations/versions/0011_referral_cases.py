"""Referral cases, their people, documents under a case, signed receipts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

- cases: a pseudonymous reference, the clinic and the spa, the opener's signed
  statement and the encrypted case header (opaque), the state and dates.
- case_people: who on either side may read the header and act on the case.
- documents.case_id: the case a document was sent under (signed in its manifest).
- receipts: a recipient's signed acknowledgement of a document, kept as proof.
- case_notes: notes on a case, encrypted to its people, with their authors' signed statements.
"""

import sqlalchemy as sa
from alembic import op

from carebridge.storage.db.schema import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cases',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('ref', sa.String(length=20), nullable=False, unique=True),
        sa.Column('clinic_org_id', sa.String(length=64), sa.ForeignKey('orgs.id'), nullable=False),
        sa.Column('spa_org_id', sa.String(length=64), sa.ForeignKey('orgs.id'), nullable=False),
        sa.Column('opened_by', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('statement', sa.LargeBinary(), nullable=False),
        sa.Column('header', sa.LargeBinary(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('ack_within', sa.BigInteger(), nullable=True),
        sa.Column('follow_up_at', UTCDateTime(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('closed_at', UTCDateTime(), nullable=True),
    )
    op.create_index('cases_clinic', 'cases', ['clinic_org_id', 'updated_at'])
    op.create_index('cases_spa', 'cases', ['spa_org_id', 'updated_at'])
    op.create_table(
        'case_people',
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), primary_key=True),
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('users.id'), primary_key=True),
    )
    op.create_index('case_people_user', 'case_people', ['user_id'])
    with op.batch_alter_table('documents') as batch:
        batch.add_column(sa.Column('case_id', sa.String(length=64), nullable=True))
        batch.create_foreign_key('documents_case_id_fkey', 'cases', ['case_id'], ['id'])
    op.create_index('documents_case', 'documents', ['case_id'])
    op.create_table(
        'case_notes',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('case_id', sa.String(length=64), sa.ForeignKey('cases.id'), nullable=False),
        sa.Column('author_id', sa.String(length=64), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('statement', sa.LargeBinary(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('log_seq', sa.BigInteger(), nullable=False),
    )
    op.create_index('case_notes_case', 'case_notes', ['case_id', 'log_seq'])
    op.create_table(
        'receipts',
        sa.Column('document_id', sa.String(length=64), sa.ForeignKey('documents.id'), primary_key=True),
        sa.Column('user_id', sa.String(length=64), sa.ForeignKey('users.id'), primary_key=True),
        sa.Column('receipt', sa.LargeBinary(), nullable=False),
        sa.Column('signed_at', UTCDateTime(), nullable=False),
        sa.Column('log_seq', sa.BigInteger(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('receipts')
    op.drop_index('case_notes_case', table_name='case_notes')
    op.drop_table('case_notes')
    op.drop_index('documents_case', table_name='documents')
    with op.batch_alter_table('documents') as batch:
        batch.drop_constraint('documents_case_id_fkey', type_='foreignkey')
        batch.drop_column('case_id')
    op.drop_table('case_people')
    op.drop_table('cases')
