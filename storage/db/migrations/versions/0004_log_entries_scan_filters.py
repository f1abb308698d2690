"""Drop the access log's object and actor indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Every append inserted into (object, seq) and (actor, seq) at random places:
at 1M entries, with 64 writers on SQLite, they cost more than half of a
group commit (about 9,000 durable appends/s with them, 20,000/s without).
Filtered exports (ledger.select_entries) scan the requested seq range on the
primary key instead: about 0.3 s per million entries on SQLite. The time
index stays: times grow with seq, so it is appended at its right end.
"""

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('log_entries_object', table_name='log_entries')
    op.drop_index('log_entries_actor', table_name='log_entries')


def downgrade() -> None:
    op.create_index('log_entries_actor', 'log_entries', ['actor', 'seq'])
    op.create_index('log_entries_object', 'log_entries', ['object', 'seq'])
