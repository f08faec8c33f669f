"""open invoices index: the dunning sweep and the payment batch find unpaid invoices without a scan

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE INDEX, as in 0004: a batch operation could rebuild the invoices table on SQLite
    # and lose the triggers that freeze issued invoices.
    op.create_index('ix_invoices_open', 'invoices', ['id'], sqlite_where=sa.text("status = 'open'"),
                    postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_index('ix_invoices_open', table_name='invoices')
