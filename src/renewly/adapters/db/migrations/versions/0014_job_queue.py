"""the job queue of `renewly worker` on PostgreSQL: procrastinate's schema, and the helpers' reports

On PostgreSQL, `renewly worker` is a procrastinate worker (renewly/worker/queue.py): its jobs,
workers, periodic defers and events live in procrastinate's tables, types and functions, all
named `procrastinate_*`. This revision applies the schema of procrastinate 3.10.0, frozen beside
it (`0014_procrastinate_schema.sql`, that version's `sql/schema.sql`), not the installed
package's: a database made after an upgrade of procrastinate gets the same schema as one made
before, so that the revision that brings the upgrade's changes applies to both.
`worker_helper_reports` holds what each helper job of a tick's fan-out did, for the tick that
waits for it to add up (a tick goes on to its chain's next round only if some batch did anything).

A later procrastinate whose schema changes ships its delta as SQL files
(`procrastinate/sql/migrations/<version>_*.sql`): upgrading it means a new Alembic revision that
executes those files' SQL, in their order, on PostgreSQL (docs/architecture.md, Workers). Never re-run
procrastinate's own `schema apply` on a database this revision made.

On SQLite the embedded worker needs no queue: a no-op.

Revision ID: 0014
Revises: 0013
"""
from pathlib import Path
from typing import Any

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

SCHEMA = Path(__file__).with_name("0014_procrastinate_schema.sql")

HELPER_REPORTS = """
CREATE TABLE worker_helper_reports (
    job_id bigint PRIMARY KEY,
    batch varchar(40) NOT NULL,
    at timestamptz NOT NULL,
    report jsonb NOT NULL
)
"""


def _psycopg(bind: Any) -> Any:
    driver = bind.connection.driver_connection
    if driver is None:
        raise RuntimeError("migration 0014 needs the driver's connection, and it is closed")
    return driver


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    # Many statements (functions with `$$` bodies, `%` in them): one query without parameters,
    # on psycopg itself, in the migration's transaction (SQLAlchemy would read `:name` or `%`).
    driver = _psycopg(bind)
    driver.execute(SCHEMA.read_text(encoding="utf-8"))
    driver.execute(HELPER_REPORTS)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    driver = _psycopg(bind)
    driver.execute("DROP TABLE worker_helper_reports")
    # Whatever procrastinate made, by its prefix: the tables (their triggers and indexes go with
    # them), then its functions and types, whichever version of its schema this database is at.
    driver.execute("""
        DO $$
        DECLARE item record;
        BEGIN
            FOR item IN SELECT tablename FROM pg_tables
                        WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%' LOOP
                EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
            END LOOP;
            FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                        JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
                EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature);
            END LOOP;
            FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                        WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
                          AND t.typtype IN ('e', 'c') LOOP
                EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
            END LOOP;
        END
        $$
    """)
