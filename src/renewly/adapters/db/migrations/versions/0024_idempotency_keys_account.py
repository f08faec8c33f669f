"""the account an idempotent request's stored answer is about, deleted with the account's data

An API request sent with an `Idempotency-Key` keeps its answer 24 hours for replays
(renewly/web/idempotency.py), and that answer may name the account's people (a member's or a
contact's e-mail, the owner, the buyer). R10's deletion must not leave them there for a day:
`idempotency_keys.account_id` says which account the answer is about (the route's
`{account_id}`, or the account the answer names), and the retention batch deletes those rows
with the account's other personal data (renewly/retention/deletion.py). NULL for an answer about
no account (a plan, a webhook endpoint, the test clock).

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('idempotency_keys', sa.Column('account_id', sa.BigInteger(), nullable=True))
    op.create_index('ix_idempotency_keys_account_id', 'idempotency_keys', ['account_id'])


def downgrade() -> None:
    op.drop_index('ix_idempotency_keys_account_id', table_name='idempotency_keys')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_column('account_id')
