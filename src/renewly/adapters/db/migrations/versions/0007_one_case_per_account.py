"""one dunning case per account: invoices join the open case; a step's notice can wait for its charges

- `dunning_case_invoices` lists the invoices of each case (an invoice issued while the account is
  in dunning joins its open case); `dunning_cases.invoice_id` goes.
- A partial unique index allows one open case per account. Accounts that had several (the old
  sweep opened one per invoice) keep the one that went furthest (then the earliest), which takes
  the others' invoices; the others are closed with the status `merged` (their steps stay, as a
  record; the retention deletes them with the account's last invoice).
- `awaiting_step`: a charging step's notice (e-mail, banner) waits for the answers of its charges.
- `warned_at`: when the warning before cancellation was given (the policy's minimum warning).
  Open cases take the time of the notice of the last step they took, which the old sweep sent
  with the step. A case warned late by the old sweep is cancelled the minimum warning after that
  e-mail: later than the date it gave, never earlier.

On SQLite the table is rebuilt (a column with its unique key and foreign key cannot be dropped,
nor a check changed, in place): the migration environment turns foreign keys off around it.

Revision ID: 0007
Revises: 0006
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
STATUSES = "status IN ('open', 'recovered', 'written_off', 'merged')"
OLD_STATUSES = "status IN ('open', 'recovered', 'written_off')"
OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        'dunning_case_invoices',
        sa.Column('invoice_id', Id, autoincrement=False, nullable=False),
        sa.Column('case_id', Id, nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['dunning_cases.id'],
                                name=op.f('fk_dunning_case_invoices_case_id_dunning_cases')),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                                name=op.f('fk_dunning_case_invoices_invoice_id_invoices')),
        sa.PrimaryKeyConstraint('invoice_id', name=op.f('pk_dunning_case_invoices')))
    op.create_index('ix_dunning_case_invoices_case_id', 'dunning_case_invoices', ['case_id'])
    op.execute("INSERT INTO dunning_case_invoices (invoice_id, case_id, added_at) "
               "SELECT invoice_id, id, opened_at FROM dunning_cases")

    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint('uq_dunning_cases_invoice_id', 'dunning_cases', type_='unique')
        op.drop_constraint('fk_dunning_cases_invoice_id_invoices', 'dunning_cases', type_='foreignkey')
        op.drop_column('dunning_cases', 'invoice_id')
        op.drop_constraint(op.f('ck_dunning_cases_status'), 'dunning_cases', type_='check')
        op.create_check_constraint(op.f('ck_dunning_cases_status'), 'dunning_cases', STATUSES)
        op.add_column('dunning_cases', sa.Column('awaiting_step', sa.Integer(), nullable=True))
        op.add_column('dunning_cases', sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True))
    else:
        _rebuild_cases_on_sqlite(
            new_columns=[sa.Column('awaiting_step', sa.Integer(), nullable=True),
                         sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True)],
            check=STATUSES, extra_constraints=[],
            copied="id, account_id, day0, status, last_step, next_step_at, opened_at, closed_at")

    _merge_open_cases_of_each_account()
    op.execute("UPDATE dunning_cases SET warned_at = (SELECT s.taken_at FROM dunning_steps AS s "
               "WHERE s.case_id = dunning_cases.id AND s.step = dunning_cases.last_step AND s.email IS NOT NULL) "
               "WHERE status = 'open'")
    op.create_index('uq_dunning_cases_one_open', 'dunning_cases', ['account_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def _merge_open_cases_of_each_account() -> None:
    bind = op.get_bind()
    cases = bind.execute(sa.text("SELECT id, account_id FROM dunning_cases WHERE status = 'open' "
                                 "ORDER BY account_id, last_step DESC, day0, id")).all()
    kept: dict[int, int] = {}
    now = datetime.now(UTC)
    for case_id, account_id in cases:
        if account_id not in kept:
            kept[account_id] = case_id
            continue
        bind.execute(sa.text("UPDATE dunning_case_invoices SET case_id = :kept WHERE case_id = :merged"),
                     {"kept": kept[account_id], "merged": case_id})
        bind.execute(sa.text("UPDATE dunning_cases SET status = 'merged', closed_at = :now, next_step_at = NULL "
                             "WHERE id = :merged"), {"merged": case_id, "now": _bindable(bind, now)})


def _bindable(bind, instant: datetime):
    # SQLite keeps naive UTC (the UTCDateTime column type), PostgreSQL aware instants.
    return instant.replace(tzinfo=None) if bind.dialect.name == 'sqlite' else instant


def _rebuild_cases_on_sqlite(*, new_columns, check: str, extra_constraints, copied: str,
                             copied_from: str | None = None) -> None:
    """SQLite's way to change a table: a new one, the rows copied, the old one dropped, the new one
    renamed (tables pointing at it do so by name); then its indexes again."""
    op.create_table(
        'dunning_cases_new',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('account_id', Id, nullable=False),
        *extra_constraints,
        sa.Column('day0', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('last_step', sa.Integer(), server_default='-1', nullable=False),
        sa.Column('next_step_at', sa.DateTime(timezone=True), nullable=True),
        *new_columns,
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(check, name=op.f('ck_dunning_cases_status')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_dunning_cases_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_cases')))
    op.execute(f"INSERT INTO dunning_cases_new ({copied}) SELECT {copied_from or copied} FROM dunning_cases")
    op.drop_table('dunning_cases')
    op.rename_table('dunning_cases_new', 'dunning_cases')
    op.create_index('ix_dunning_cases_account_id', 'dunning_cases', ['account_id'])
    op.create_index('ix_dunning_cases_due', 'dunning_cases', ['next_step_at', 'id'], sqlite_where=OPEN)


def downgrade() -> None:
    # Back to one invoice per case: each case keeps its first invoice; a merged case is closed.
    op.drop_index('uq_dunning_cases_one_open', table_name='dunning_cases')
    op.execute("UPDATE dunning_cases SET status = 'written_off' WHERE status = 'merged'")
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_column('dunning_cases', 'warned_at')
        op.drop_column('dunning_cases', 'awaiting_step')
        op.drop_constraint(op.f('ck_dunning_cases_status'), 'dunning_cases', type_='check')
        op.create_check_constraint(op.f('ck_dunning_cases_status'), 'dunning_cases', OLD_STATUSES)
        op.add_column('dunning_cases', sa.Column('invoice_id', Id, nullable=True))
        op.execute("UPDATE dunning_cases SET invoice_id = (SELECT min(invoice_id) FROM dunning_case_invoices "
                   "WHERE case_id = dunning_cases.id)")
        op.alter_column('dunning_cases', 'invoice_id', nullable=False)
        op.create_unique_constraint('uq_dunning_cases_invoice_id', 'dunning_cases', ['invoice_id'])
        op.create_foreign_key('fk_dunning_cases_invoice_id_invoices', 'dunning_cases', 'invoices',
                              ['invoice_id'], ['id'])
    else:
        op.execute("ALTER TABLE dunning_cases ADD COLUMN first_invoice_id INTEGER")
        op.execute("UPDATE dunning_cases SET first_invoice_id = (SELECT min(invoice_id) FROM dunning_case_invoices "
                   "WHERE case_id = dunning_cases.id)")
        _rebuild_cases_on_sqlite(
            new_columns=[], check=OLD_STATUSES,
            extra_constraints=[sa.Column('invoice_id', Id, nullable=False),
                               sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                                                       name=op.f('fk_dunning_cases_invoice_id_invoices')),
                               sa.UniqueConstraint('invoice_id', name=op.f('uq_dunning_cases_invoice_id'))],
            copied="id, account_id, invoice_id, day0, status, last_step, next_step_at, opened_at, closed_at",
            copied_from="id, account_id, first_invoice_id, day0, status, last_step, next_step_at, opened_at, "
                        "closed_at")
    op.drop_index('ix_dunning_case_invoices_case_id', table_name='dunning_case_invoices')
    op.drop_table('dunning_case_invoices')
