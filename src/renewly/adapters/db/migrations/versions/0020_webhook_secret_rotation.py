"""webhook endpoints: a rotated secret's predecessor, still signing until a given instant

`renewly webhooks rotate-secret` (POST /v1/webhook_endpoints/{id}/rotate_secret) gives an
endpoint a new secret; the old one stays in `previous_secret` and every webhook is signed with
both (Standard Webhooks: signatures separated by a space) until `previous_secret_until`, so the
receiver can switch to the new secret without losing an event.

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoints') as batch_op:
        batch_op.add_column(sa.Column('previous_secret', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoints') as batch_op:
        batch_op.drop_column('previous_secret_until')
        batch_op.drop_column('previous_secret')
