"""invoices follow their subscription: one composite foreign key instead of two

An invoice now points at its subscription and account together, (account_id, subscription_id) ->
subscriptions (account_id, id), and a credit note at the invoice it corrects together with its
account, so an invoice can no longer name another account's subscription. It is also one
foreign-key check per renewal invoice instead of two, on a row the renewal has already locked: the
account row is not locked (and written) once more per invoice. A check makes every invoice name
its subscription and every credit note its invoice, so the composite keys always apply.

On SQLite the table keeps the single-column foreign keys of 0001: changing a constraint there means
rebuilding the table, which would drop the triggers that freeze issued invoices. Only the indexes
change there.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The referenced pairs need unique indexes; each replaces the plain account_id index.
    op.create_index('uq_subscriptions_account_id_id', 'subscriptions', ['account_id', 'id'], unique=True)
    op.drop_index('ix_subscriptions_account_id', table_name='subscriptions')
    op.create_index('uq_invoices_account_id_id', 'invoices', ['account_id', 'id'], unique=True)
    op.drop_index('ix_invoices_account_id', table_name='invoices')
    # Only credit notes have a credited invoice: renewal invoices need no entry in this index.
    op.drop_index('ix_invoices_credited_invoice_id', table_name='invoices')
    op.create_index('ix_invoices_credited_invoice_id', 'invoices', ['credited_invoice_id'],
                    sqlite_where=sa.text('credited_invoice_id IS NOT NULL'),
                    postgresql_where=sa.text('credited_invoice_id IS NOT NULL'))
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_constraint('fk_invoices_account_id_accounts', 'invoices', type_='foreignkey')
    op.drop_constraint('fk_invoices_subscription_id_subscriptions', 'invoices', type_='foreignkey')
    op.drop_constraint('fk_invoices_credited_invoice_id_invoices', 'invoices', type_='foreignkey')
    op.create_check_constraint(
        'ck_invoices_parent', 'invoices',
        "(kind = 'invoice' AND subscription_id IS NOT NULL AND credited_invoice_id IS NULL)"
        " OR (kind = 'credit_note' AND credited_invoice_id IS NOT NULL AND subscription_id IS NULL)")
    op.create_foreign_key('fk_invoices_account_id_subscriptions', 'invoices', 'subscriptions',
                          ['account_id', 'subscription_id'], ['account_id', 'id'])
    op.create_foreign_key('fk_invoices_account_id_invoices', 'invoices', 'invoices',
                          ['account_id', 'credited_invoice_id'], ['account_id', 'id'])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint('fk_invoices_account_id_invoices', 'invoices', type_='foreignkey')
        op.drop_constraint('fk_invoices_account_id_subscriptions', 'invoices', type_='foreignkey')
        op.drop_constraint('ck_invoices_parent', 'invoices', type_='check')
        op.create_foreign_key('fk_invoices_credited_invoice_id_invoices', 'invoices', 'invoices',
                              ['credited_invoice_id'], ['id'])
        op.create_foreign_key('fk_invoices_subscription_id_subscriptions', 'invoices', 'subscriptions',
                              ['subscription_id'], ['id'])
        op.create_foreign_key('fk_invoices_account_id_accounts', 'invoices', 'accounts', ['account_id'], ['id'])
    op.drop_index('ix_invoices_credited_invoice_id', table_name='invoices')
    op.create_index('ix_invoices_credited_invoice_id', 'invoices', ['credited_invoice_id'])
    op.create_index('ix_invoices_account_id', 'invoices', ['account_id'])
    op.drop_index('uq_invoices_account_id_id', table_name='invoices')
    op.create_index('ix_subscriptions_account_id', 'subscriptions', ['account_id'])
    op.drop_index('uq_subscriptions_account_id_id', table_name='subscriptions')
