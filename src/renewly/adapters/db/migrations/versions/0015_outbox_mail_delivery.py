"""e-mails leave the outbox over SMTP: each row's attempts, next attempt, claim, failure

Delivery (`renewly mail send`, the worker's `mail` batch; docs/mail.md) claims the e-mails due
(`topic = 'email'`, neither delivered nor failed, `next_attempt_at` NULL or past, no live claim),
sends them and marks each: `delivered_at`; or, for a temporary failure (4xx, no connection, a
timeout), `attempts + 1` and `next_attempt_at` later by a growing delay, its reason in
`last_error`; or, for a permanent one (5xx), `failed_at` and the server's reply in `last_error`.
`claimed_until` is a process's wall-clock lease over the e-mails it is sending: another process
leaves them alone until it ends (the first one died). Rows written before this migration are
due at once: configuring SMTP sends what waits in the outbox.

The partial indexes keep the claim and `renewly outbox list --failed` to the rows they are about:
events (not delivered yet: webhooks come later) and delivered e-mails are not in them.

Chained to 0013, main's head when it was rebased; 0014 (another branch) is to come between.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

DUE = "topic = 'email' AND delivered_at IS NULL AND failed_at IS NULL"
FAILED = "failed_at IS NOT NULL"


def upgrade() -> None:
    # Added in place on both engines (no table rebuild: SQLite's outbox keeps its AUTOINCREMENT).
    op.add_column('outbox', sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('outbox', sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('outbox', sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('outbox', sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('outbox', sa.Column('last_error', sa.Text(), nullable=True))
    op.create_index('ix_outbox_mail_due', 'outbox', ['id'], sqlite_where=sa.text(DUE), postgresql_where=sa.text(DUE))
    op.create_index('ix_outbox_mail_failed', 'outbox', ['id'], sqlite_where=sa.text(FAILED),
                    postgresql_where=sa.text(FAILED))


def downgrade() -> None:
    op.drop_index('ix_outbox_mail_failed', table_name='outbox')
    op.drop_index('ix_outbox_mail_due', table_name='outbox')
    for column in ('last_error', 'failed_at', 'claimed_until', 'next_attempt_at', 'attempts'):
        op.drop_column('outbox', column)  # SQLite 3.35 and later drop a column in place
