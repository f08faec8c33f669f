"""retention indexes: the purge finds old invoices, the deletion an account's outbox rows

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE INDEX: a batch operation could rebuild the invoices table on SQLite and lose
    # the triggers that freeze issued invoices.
    op.create_index('ix_invoices_credited_invoice_id', 'invoices', ['credited_invoice_id'])
    op.create_index('ix_invoices_issue_date', 'invoices', ['issue_date'])
    op.create_index('ix_outbox_account_id', 'outbox', ['account_id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_account_id', table_name='outbox')
    op.drop_index('ix_invoices_issue_date', table_name='invoices')
    op.drop_index('ix_invoices_credited_invoice_id', table_name='invoices')
