"""accounts carry the operator's own key for them: what a bulk import names each account by

`renewly import` (docs/import.md) writes each account with the key the file gives it, the
customer's id in the operator's previous system (Kill Bill's `externalKey`). Unique: a second
run of the same file finds its accounts by key and skips them, and two imports at once cannot
both write one. NULL for accounts created one by one (`accounts create`).

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('accounts', sa.Column('external_key', sa.String(length=100), nullable=True))
    op.create_index('uq_accounts_external_key', 'accounts', ['external_key'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_accounts_external_key', table_name='accounts')
    op.drop_column('accounts', 'external_key')  # SQLite 3.35 and later drop a column in place
