"""TOTP secrets sealed at rest (room for the sealed form), and the address a session signed in from

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

- user_credentials.totp_secret and enrollments.totp_secret: 64 -> 200
  characters, for the ``sb1.…`` sealed form (about 100). The gateway holds
  the sealing key outside the database, so the values are sealed when it
  starts (gateway/server/totp_secrets.py ``seal_plain_secrets``), not here.
- sessions.address: the client's address at sign-in, shown in one's list of
  sessions (NULL for sessions from before).
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_TABLES = ('user_credentials', 'enrollments')


def upgrade() -> None:
    with op.batch_alter_table('sessions') as batch:
        batch.add_column(sa.Column('address', sa.String(length=64), nullable=True))
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column('totp_secret', existing_type=sa.String(length=64), type_=sa.String(length=200),
                               existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('sessions') as batch:
        batch.drop_column('address')
    # A sealed secret does not fit in 64 characters: downgrading needs the secrets unsealed first.
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column('totp_secret', existing_type=sa.String(length=200), type_=sa.String(length=64),
                               existing_nullable=True)
