"""each queue worker's own queue: the tick's helpers go one to each live worker

A tick fans its batch out into helper jobs; procrastinate hands a job to whichever worker fetches
it first, so one worker could take two helpers and another none. Each `renewly worker` on
PostgreSQL now also listens on a queue of its own (renewly/worker/queue.py) and says which here,
once procrastinate has registered it: the tick defers one helper to the own queue of each other
live worker. A worker's row goes with its procrastinate row (ON DELETE CASCADE): when it stops,
or when a starting worker prunes it, dead.

On SQLite the embedded worker needs no queue: a no-op.

Revision ID: 0019
Revises: 0018
"""
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("""
        CREATE TABLE worker_queues (
            worker_id bigint PRIMARY KEY REFERENCES procrastinate_workers (id) ON DELETE CASCADE,
            queue_name varchar(128) NOT NULL UNIQUE
        )
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TABLE worker_queues")
