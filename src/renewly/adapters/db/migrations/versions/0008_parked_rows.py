"""parked rows: what a batch could not process, left aside with the reason

One bad row (a subscription whose invoice cannot be issued, a case the sweep cannot decide) used
to stop its whole batch, and every account with it. The batch now parks that row here, goes on,
and skips it until the operator puts it back.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
OPEN = sa.text('resolved_at IS NULL')


def upgrade() -> None:
    op.create_table(
        'parked_rows',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('batch', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=32), nullable=False),
        sa.Column('subject_id', Id, nullable=False),
        sa.Column('account_id', Id, nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('parked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_parked_rows')))
    op.create_index('uq_parked_rows_open', 'parked_rows', ['subject', 'subject_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index('uq_parked_rows_open', table_name='parked_rows')
    op.drop_table('parked_rows')
