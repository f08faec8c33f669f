"""the queue worker that claimed a pending charge, so that its death ends the claim

A pending attempt is its process's until its lease ends (`payments.lease_seconds`, 15 minutes):
a janitor leaves it alone meanwhile, the process may still be waiting for the gateway. A queue
worker killed with charges in hand is taken for dead after `worker.stalled_seconds` (a minute)
and its tick run again, but that run's janitor had to leave the dead worker's charges alone
until their lease ended: the next hourly payment batch settled them, and the customers'
notices came an hour late. `payment_attempts.worker_id` names the worker (procrastinate's id)
whose process claimed the attempt; a janitor takes it over as soon as that worker's heartbeat is
older than `worker.stalled_seconds` (renewly/payments/janitor.py). No foreign key: procrastinate
deletes a dead worker's row. NULL for an attempt claimed outside a worker: lease only.

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('payment_attempts', sa.Column('worker_id', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('worker_id')
