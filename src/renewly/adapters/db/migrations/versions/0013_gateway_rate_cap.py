"""the gateway's rate cap: one row, the next free call slot, shared by every worker

Each `renewly worker` process used to keep its own token bucket, so N workers made N times
`payments.rate_limit_per_second` calls against a gateway that caps them all together (Stripe:
100 a second). On PostgreSQL every process now takes its call slots from this row
(`adapters/db/rate_cap.py`), on the database's clock. UNLOGGED: a grant writes no WAL, and a
crash that empties the table loses nothing but slots already past. SQLite (one worker per file)
has the table and leaves it empty.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'gateway_rate_cap',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('next_slot', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_gateway_rate_cap_one_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_rate_cap')))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE gateway_rate_cap SET UNLOGGED')


def downgrade() -> None:
    op.drop_table('gateway_rate_cap')
