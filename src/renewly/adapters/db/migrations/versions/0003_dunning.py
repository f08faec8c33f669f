"""dunning

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 03:14:00.821837
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_contacts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=320), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('requested', 'active', 'refused', 'removed')", name=op.f('ck_billing_contacts_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_billing_contacts_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_contacts'))
    )
    with op.batch_alter_table('billing_contacts', schema=None) as batch_op:
        batch_op.create_index('uq_billing_contacts_current', ['account_id', 'email'], unique=True, sqlite_where=sa.text("status IN ('requested', 'active')"), postgresql_where=sa.text("status IN ('requested', 'active')"))

    op.create_table('reactivations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('granted_by', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_reactivations_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reactivations'))
    )
    with op.batch_alter_table('reactivations', schema=None) as batch_op:
        batch_op.create_index('uq_reactivations_one_running', ['account_id'], unique=True, sqlite_where=sa.text('outcome IS NULL'), postgresql_where=sa.text('outcome IS NULL'))

    op.create_table('dunning_cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('invoice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day0', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_step', sa.Integer(), server_default='-1', nullable=False),
    sa.Column('next_step_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'recovered', 'written_off')", name=op.f('ck_dunning_cases_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_dunning_cases_account_id_accounts')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_dunning_cases_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_cases')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_dunning_cases_invoice_id'))
    )
    with op.batch_alter_table('dunning_cases', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_cases_account_id', ['account_id'], unique=False)
        batch_op.create_index('ix_dunning_cases_due', ['next_step_at', 'id'], unique=False, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('dunning_steps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('policy_version', sa.String(length=64), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('email', sa.String(length=64), nullable=True),
    sa.Column('charge_requested', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['dunning_cases.id'], name=op.f('fk_dunning_steps_case_id_dunning_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_steps')),
    sa.UniqueConstraint('case_id', 'step', name='uq_dunning_steps_case_step')
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('banner', sa.String(length=20), server_default='none', nullable=False))
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deletion_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_accounts_deletion_due', ['deletion_due_at'], unique=False, sqlite_where=sa.text("status = 'cancelled'"), postgresql_where=sa.text("status = 'cancelled'"))



def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_accounts_deletion_due', sqlite_where=sa.text("status = 'cancelled'"), postgresql_where=sa.text("status = 'cancelled'"))
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('deletion_due_at')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('banner')

    op.drop_table('dunning_steps')
    with op.batch_alter_table('dunning_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_cases_due', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_dunning_cases_account_id')

    op.drop_table('dunning_cases')
    with op.batch_alter_table('reactivations', schema=None) as batch_op:
        batch_op.drop_index('uq_reactivations_one_running', sqlite_where=sa.text('outcome IS NULL'), postgresql_where=sa.text('outcome IS NULL'))

    op.drop_table('reactivations')
    with op.batch_alter_table('billing_contacts', schema=None) as batch_op:
        batch_op.drop_index('uq_billing_contacts_current', sqlite_where=sa.text("status IN ('requested', 'active')"), postgresql_where=sa.text("status IN ('requested', 'active')"))

    op.drop_table('billing_contacts')
