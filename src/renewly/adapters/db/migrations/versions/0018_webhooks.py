"""webhooks to the host product: endpoints, deliveries (one per endpoint and event), their attempts

Every outbox event goes, signed (Standard Webhooks), to each endpoint that wants its type
(renewly/webhooks, docs/webhooks.md). The webhooks batch hands an event over once: it makes its
deliveries and sets the event's `delivered_at` (the partial index `ix_outbox_events_due` keeps
the events still to hand over, so that e-mails waiting for an SMTP server are not in it). Each
delivery is tried on a schedule (`next_attempt_at`, `attempts`, a process's wall-clock lease
`claimed_until`) until it is delivered or its schedule is spent; each try is a row of
`webhook_delivery_attempts`. Deliveries and attempts go with their event (the retention batch
deletes a deleted account's outbox rows, R10.1) and with their endpoint: ON DELETE CASCADE.

Events written before this migration are handed over like the others, to the endpoints
registered before they were written: none.

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Document = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
EVENTS_DUE = "topic <> 'email' AND delivered_at IS NULL"
DELIVERY_DUE = "status IN ('pending', 'replay')"


def upgrade() -> None:
    op.create_index('ix_outbox_events_due', 'outbox', ['id'], sqlite_where=sa.text(EVENTS_DUE),
                    postgresql_where=sa.text(EVENTS_DUE))
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('event_types', Document, nullable=False),
        sa.Column('description', sa.String(length=500), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('events_from', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_reason', sa.Text(), nullable=True),
        sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')))
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('endpoint_id', Id, nullable=False),
        sa.Column('outbox_id', Id, nullable=False),
        sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'replay', 'delivered', 'failed')",
                           name=op.f('ck_webhook_deliveries_status')),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints')),
        sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_deliveries_outbox_id_outbox')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
        sa.UniqueConstraint('endpoint_id', 'outbox_id', name='uq_webhook_deliveries_endpoint_event'))
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'],
                    sqlite_where=sa.text(DELIVERY_DUE), postgresql_where=sa.text(DELIVERY_DUE))
    op.create_index('ix_webhook_deliveries_outbox_id', 'webhook_deliveries', ['outbox_id'])
    op.create_table(
        'webhook_delivery_attempts',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('delivery_id', Id, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('replay', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('http_status', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('latency_ms', sa.Integer(), nullable=False),
        sa.Column('response_excerpt', sa.Text(), server_default='', nullable=False),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_delivery_attempts_delivery_id_webhook_deliveries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery_attempts')))
    op.create_index('ix_webhook_delivery_attempts_delivery_id', 'webhook_delivery_attempts', ['delivery_id'])


def downgrade() -> None:
    op.drop_table('webhook_delivery_attempts')
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_outbox_events_due', table_name='outbox')
