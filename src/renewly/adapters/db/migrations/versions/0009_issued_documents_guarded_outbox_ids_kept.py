"""issued documents cannot be rewritten by any statement; outbox ids are never given twice

Migration 0001 refused an UPDATE of an issued invoice's content and of its lines. Other statements
still rewrote one: on SQLite `INSERT OR REPLACE` (REPLACE deletes the old row without firing its
delete triggers), on both engines a DELETE of its lines and an INSERT of new ones, or a DELETE of
the invoice and an INSERT of another under its number; on PostgreSQL TRUNCATE, which fires no row
trigger. Now:

- Lines are inserted only while a document is issued (`store_documents`), deleted only while the
  retention batch purges documents (R10.2), updated never (0001). Invoices are deleted only while
  the retention batch purges them. TRUNCATE of invoices, invoice_lines and audit_log is refused.
- On SQLite, an INSERT into invoices that meets an existing id, number, series sequence or
  subscription period is refused by a BEFORE INSERT trigger, and so is one into audit_log that
  meets an existing id: that is what REPLACE would delete. The other way, turning
  `recursive_triggers` on so that REPLACE fires the delete triggers, was not chosen: it is a
  setting of each connection, and the sqlite3 shell, a backup or an import script, which do not
  set it, would still replace a row. A trigger is in the file and holds for every connection.
  (A plain duplicate INSERT is refused by this trigger's message instead of the unique key's.)

How the two writers get through. Issuing and purging open a door for their own statements
(`renewly.adapters.db.guards.writing_documents`): on PostgreSQL a transaction-local setting,
`renewly.issuing` or `renewly.purging` set to `on` (SET LOCAL: it ends with the transaction, and a
rollback undoes it); on SQLite a row of `document_writes` ('issuing' or 'purging'), written and
deleted inside the writer's transaction (SQLite has one writer at a time, and readers never see
it). Not a temp table: a trigger of the main database cannot read a connection's temp tables.
Statement-level triggers on PostgreSQL, so that the COPY of a slice's lines costs one check, not
one per line; row triggers on SQLite (it has no other kind).

Rules the database could check by itself were weighed and left: "only invoices past their
retention" needs the retention, a setting of the policy counted in the seller's time zone, which
the database does not know; "lines only with their invoice" needs a check at commit (the lines go
first, the foreign key wants it), which SQLite does not have. A door is a guard against a bug or a
mistyped statement, not a permission: a session can open it on purpose. What a session may do at
all is the database role's business (docs/operations.md, "The database role").

Outbox ids (SQLite): an id freed by the retention batch (which deletes an account's outbox rows,
R10.1) was given again to the next event, since SQLite takes max(id) + 1; a webhook consumer that
drops ids it has seen would have dropped that event. The table is rebuilt with AUTOINCREMENT,
keeping its rows and ids; `sqlite_sequence` starts at the highest id it holds (ids above it that
were given and deleted before this upgrade left no trace and cannot be known). PostgreSQL's
sequences never give an id twice.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UNDELIVERED = sa.text('delivered_at IS NULL')

# The refusals, the same words on both engines.
INVOICE_DELETED = ("issued invoices cannot be deleted (R2.4): only the retention batch deletes them, "
                   "once their retention has ended (R10.2)")
INVOICE_REPLACED = ("issued invoice cannot be replaced (R2.4): its id, number or period is taken; "
                    "issue a credit note")
LINES_INSERTED = "invoice_lines rows cannot be inserted (R2.4): lines are written with their invoice"
LINES_DELETED = ("invoice_lines rows cannot be deleted (R2.4): only the retention batch deletes them, "
                 "with their invoice (R10.2)")
AUDIT_CHANGED = "audit_log rows cannot be changed (append-only)"

# PostgreSQL: (trigger, table, event, the door that lets it through or '' for none, refusal).
PG_GUARDS = (
    ("invoices_deleted_only_when_purging", "invoices", "DELETE", "renewly.purging", INVOICE_DELETED),
    ("invoice_lines_inserted_only_when_issuing", "invoice_lines", "INSERT", "renewly.issuing", LINES_INSERTED),
    ("invoice_lines_deleted_only_when_purging", "invoice_lines", "DELETE", "renewly.purging", LINES_DELETED),
    ("invoices_never_truncated", "invoices", "TRUNCATE", "", "invoices cannot be truncated (R2.4)"),
    ("invoice_lines_never_truncated", "invoice_lines", "TRUNCATE", "", "invoice_lines cannot be truncated (R2.4)"),
    ("audit_log_never_truncated", "audit_log", "TRUNCATE", "", "audit_log cannot be truncated (append-only)"),
)


def _open(purpose: str) -> str:
    return f"EXISTS (SELECT 1 FROM document_writes WHERE purpose = '{purpose}')"


def _taken(condition: str) -> str:
    return f"EXISTS (SELECT 1 FROM invoices WHERE {condition})"


# SQLite: (trigger, table, event, when, refusal). Each EXISTS probes one index.
SQLITE_GUARDS = (
    ("invoices_deleted_only_when_purging", "invoices", "DELETE", f"NOT {_open('purging')}", INVOICE_DELETED),
    ("invoice_lines_inserted_only_when_issuing", "invoice_lines", "INSERT", f"NOT {_open('issuing')}",
     LINES_INSERTED),
    ("invoice_lines_deleted_only_when_purging", "invoice_lines", "DELETE", f"NOT {_open('purging')}",
     LINES_DELETED),
    ("invoices_never_replaced", "invoices", "INSERT",
     " OR ".join((_taken("id = NEW.id"), _taken("number = NEW.number"),
                  _taken("series = NEW.series AND sequence = NEW.sequence"),
                  "(NEW.kind = 'invoice' AND " + _taken("kind = 'invoice' AND subscription_id = NEW.subscription_id "
                                                        "AND period_start = NEW.period_start") + ")")),
     INVOICE_REPLACED),
    ("audit_log_never_replaced", "audit_log", "INSERT", "EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)",
     AUDIT_CHANGED),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # For statement-level triggers (their return value is ignored). TG_ARGV[0] names the
        # setting that lets the statement through, '' for none; TG_ARGV[1] is the refusal.
        op.execute("""
            CREATE FUNCTION renewly_refuse_unless_open() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_ARGV[0] = '' OR coalesce(current_setting(TG_ARGV[0], true), '') <> 'on' THEN
                RAISE EXCEPTION '%', TG_ARGV[1] USING ERRCODE = 'integrity_constraint_violation';
              END IF;
              RETURN NULL;
            END $$""")
        for name, table, event, door, refusal in PG_GUARDS:
            op.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION renewly_refuse_unless_open('{door}', '{refusal}')")
        return
    op.create_table('document_writes',
                    sa.Column('purpose', sa.String(length=16), nullable=False),
                    sa.CheckConstraint("purpose IN ('issuing', 'purging')", name=op.f('ck_document_writes_purpose')),
                    sa.PrimaryKeyConstraint('purpose', name=op.f('pk_document_writes')))
    for name, table, event, when, refusal in SQLITE_GUARDS:
        op.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN {when} "
                   f"BEGIN SELECT RAISE(ABORT, '{refusal}'); END")
    _rebuild_outbox_on_sqlite(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, table, *_ in PG_GUARDS:
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION renewly_refuse_unless_open()")
        return
    _rebuild_outbox_on_sqlite(autoincrement=False)
    for name, *_ in SQLITE_GUARDS:
        op.execute(f"DROP TRIGGER {name}")
    op.drop_table('document_writes')


def _rebuild_outbox_on_sqlite(*, autoincrement: bool) -> None:
    """SQLite sets AUTOINCREMENT only when a table is created: a new table, the rows copied with
    their ids (which sets `sqlite_sequence` to the highest), the old one dropped, the new one renamed
    (the rename carries its `sqlite_sequence` row); then the indexes again. Nothing points at the outbox."""
    op.create_table(
        'outbox_new',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('topic', sa.String(length=64), nullable=False),
        sa.Column('account_id', Id, nullable=True),
        sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
        sqlite_autoincrement=autoincrement)
    columns = "id, created_at, topic, account_id, payload, delivered_at"
    op.execute(f"INSERT INTO outbox_new ({columns}) SELECT {columns} FROM outbox")
    op.drop_table('outbox')
    op.rename_table('outbox_new', 'outbox')
    op.create_index('ix_outbox_undelivered', 'outbox', ['id'], sqlite_where=UNDELIVERED)
    op.create_index('ix_outbox_account_id', 'outbox', ['account_id'])
