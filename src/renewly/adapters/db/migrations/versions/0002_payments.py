"""payments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:09:40.630485
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('card_verifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_token', sa.String(length=255), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('authorization_ref', sa.String(length=255), nullable=True),
    sa.Column('decline_code', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('void_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_card_verifications_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_verifications'))
    )
    with op.batch_alter_table('card_verifications', schema=None) as batch_op:
        batch_op.create_index('ix_card_verifications_open', ['void_due_at'], unique=False, sqlite_where=sa.text("status IN ('held', 'unknown', 'pending')"), postgresql_where=sa.text("status IN ('held', 'unknown', 'pending')"))

    op.create_table('cards',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token', sa.String(length=255), nullable=False),
    sa.Column('brand', sa.String(length=16), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('added_by', sa.String(length=320), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'replaced', 'deleted')", name=op.f('ck_cards_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_cards_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index('uq_cards_one_active', ['account_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.create_table('gateway_customers',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_gateway_customers_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_gateway_customers'))
    )
    op.create_table('payment_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decline_code', sa.String(length=32), nullable=True),
    sa.Column('charge', sa.String(length=255), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'declined', 'unknown', 'not_sent')", name=op.f('ck_payment_attempts_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_payment_attempts_account_id_accounts')),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_payment_attempts_card_id_cards')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_attempts_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_attempts')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_payment_attempts_idempotency_key')),
    sa.UniqueConstraint('invoice_id', 'number', name='uq_payment_attempts_invoice_number')
    )
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_payment_attempts_invoice_id', ['invoice_id'], unique=False)
        batch_op.create_index('uq_payment_attempts_one_unsettled', ['invoice_id'], unique=True, sqlite_where=sa.text("status IN ('pending', 'unknown')"), postgresql_where=sa.text("status IN ('pending', 'unknown')"))

    op.create_table('payment_retries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempt_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['payment_attempts.id'], name=op.f('fk_payment_retries_attempt_id_payment_attempts')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_retries_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_retries')),
    sa.UniqueConstraint('invoice_id', 'reason', name='uq_payment_retries_invoice_reason')
    )
    with op.batch_alter_table('payment_retries', schema=None) as batch_op:
        batch_op.create_index('ix_payment_retries_open', ['invoice_id'], unique=False, sqlite_where=sa.text('attempt_id IS NULL'), postgresql_where=sa.text('attempt_id IS NULL'))



def downgrade() -> None:
    with op.batch_alter_table('payment_retries', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_retries_open', sqlite_where=sa.text('attempt_id IS NULL'), postgresql_where=sa.text('attempt_id IS NULL'))

    op.drop_table('payment_retries')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('uq_payment_attempts_one_unsettled', sqlite_where=sa.text("status IN ('pending', 'unknown')"), postgresql_where=sa.text("status IN ('pending', 'unknown')"))
        batch_op.drop_index('ix_payment_attempts_invoice_id')

    op.drop_table('payment_attempts')
    op.drop_table('gateway_customers')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index('uq_cards_one_active', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.drop_table('cards')
    with op.batch_alter_table('card_verifications', schema=None) as batch_op:
        batch_op.drop_index('ix_card_verifications_open', sqlite_where=sa.text("status IN ('held', 'unknown', 'pending')"), postgresql_where=sa.text("status IN ('held', 'unknown', 'pending')"))

    op.drop_table('card_verifications')
