"""a deleted account's people become pseudonyms in the audit log

The retention batch deleted an account's personal data (R10.1) but left its people's e-mail
addresses in the audit log: as actors, in details (`owner`, `email`, `from`, `to`, `by`), in
reasons support wrote. It now rewrites them as pseudonyms (`account-42/person-1`, the same
person the same one in all the account's entries; domain/pseudonyms.py says how and why), and the
audit log lets it, and nobody else, do so:

- UPDATE of audit_log is refused, as before, unless the retention batch opened its way
  (`renewly.adapters.db.guards.pseudonymising_audit`: on PostgreSQL the transaction-local setting
  `renewly.pseudonymising`, on SQLite a row 'pseudonymising' of `document_writes`, as for 0009's
  writers); and even then it may change only `actor`, `reason` and `details`, never `id`, `at`,
  `action`, `target_type`, `target_id`, and only of entries about an account whose status is
  already `deleted` (the entry's target: the account, one of its subscriptions or dunning cases,
  or one of its invoices by number). DELETE, TRUNCATE and REPLACE stay refused (0001, 0009).
- `ix_audit_log_target` finds an account's entries without reading the whole log.
- Accounts deleted before this upgrade get the same treatment now, once: their members and
  contacts are gone, so their people are the addresses their entries hold and the actors of what
  only customers do; the names and address lines are their issued invoices' buyers. Their cards
  lose their last four digits, and their reactivations' and parked rows' reasons are rewritten
  too, as the batch does from now on.

The pseudonyms follow domain/pseudonyms.py, imported here: the rules are the batch's, and a
rewrite cannot be done twice (once done, no address is left to find).

On PostgreSQL the application role needs `UPDATE (actor, reason, details)` on audit_log
(docs/operations.md); the trigger still decides which rows and when.

Revision ID: 0010
Revises: 0009
"""
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from renewly.retention.rules.pseudonyms import AuditEntry, KnownPersonalData, pseudonymise

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

AUDIT_CHANGED = "audit_log rows cannot be changed (append-only)"
ONLY_PERSONAL_FIELDS = ("audit_log rows cannot be changed (append-only): pseudonymising rewrites only "
                        "actor, reason and details")
ONLY_DELETED_ACCOUNTS = ("audit_log rows cannot be changed (append-only): pseudonymising rewrites only "
                         "the entries of deleted accounts (R10.1)")
IMMUTABLE = ("id", "at", "action", "target_type", "target_id")
OLD_PURPOSES = "purpose IN ('issuing', 'purging')"
PURPOSES = "purpose IN ('issuing', 'purging', 'pseudonymising')"

# The account an entry is about, by its target. An id is digits only (a cast would read '12x' as 12).
_SQLITE_ID = ("(CASE WHEN OLD.target_id <> '' AND OLD.target_id NOT GLOB '*[^0-9]*' AND length(OLD.target_id) <= 18 "
              "THEN CAST(OLD.target_id AS INTEGER) END)")
_SQLITE_ACCOUNT = (f"(CASE OLD.target_type WHEN 'account' THEN {_SQLITE_ID} "
                   f"WHEN 'subscription' THEN (SELECT account_id FROM subscriptions WHERE id = {_SQLITE_ID}) "
                   f"WHEN 'dunning_case' THEN (SELECT account_id FROM dunning_cases WHERE id = {_SQLITE_ID}) "
                   f"WHEN 'invoice' THEN (SELECT account_id FROM invoices WHERE number = OLD.target_id) END)")
SQLITE_GUARDS = (
    ("audit_log_updated_only_when_pseudonymising",
     "NOT EXISTS (SELECT 1 FROM document_writes WHERE purpose = 'pseudonymising')", AUDIT_CHANGED),
    ("audit_log_pseudonymised_fields_only", " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in IMMUTABLE),
     ONLY_PERSONAL_FIELDS),
    ("audit_log_pseudonymised_only_when_deleted",
     f"NOT EXISTS (SELECT 1 FROM accounts WHERE status = 'deleted' AND id = {_SQLITE_ACCOUNT})",
     ONLY_DELETED_ACCOUNTS),
)

PG_FUNCTION = f"""
CREATE FUNCTION renewly_audit_pseudonymised_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  about bigint;
BEGIN
  IF coalesce(current_setting('renewly.pseudonymising', true), '') <> 'on' THEN
    RAISE EXCEPTION '{AUDIT_CHANGED}' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF {" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in IMMUTABLE)} THEN
    RAISE EXCEPTION '{ONLY_PERSONAL_FIELDS}' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.target_type = 'invoice' THEN
    SELECT account_id INTO about FROM invoices WHERE number = OLD.target_id;
  ELSIF OLD.target_id ~ '^[0-9]{{1,18}}$' THEN
    CASE OLD.target_type
      WHEN 'account' THEN about := OLD.target_id::bigint;
      WHEN 'subscription' THEN SELECT account_id INTO about FROM subscriptions WHERE id = OLD.target_id::bigint;
      WHEN 'dunning_case' THEN SELECT account_id INTO about FROM dunning_cases WHERE id = OLD.target_id::bigint;
      ELSE about := NULL;
    END CASE;
  END IF;
  IF about IS NULL OR NOT EXISTS (SELECT 1 FROM accounts WHERE id = about AND status = 'deleted') THEN
    RAISE EXCEPTION '{ONLY_DELETED_ACCOUNTS}' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    op.create_index('ix_audit_log_target', 'audit_log', ['target_type', 'target_id'])
    if postgres:
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
    _pseudonymise_accounts_deleted_before(postgres)
    if postgres:
        op.execute("""CREATE TRIGGER audit_log_never_deleted BEFORE DELETE ON audit_log
                      FOR EACH ROW EXECUTE FUNCTION renewly_refuse_change('append-only')""")
        op.execute(PG_FUNCTION)
        op.execute("""CREATE TRIGGER audit_log_pseudonymised_only BEFORE UPDATE ON audit_log
                      FOR EACH ROW EXECUTE FUNCTION renewly_audit_pseudonymised_only()""")
        return
    _document_writes(PURPOSES)
    for name, when, refusal in SQLITE_GUARDS:
        op.execute(f"CREATE TRIGGER {name} BEFORE UPDATE ON audit_log FOR EACH ROW WHEN {when} "
                   f"BEGIN SELECT RAISE(ABORT, '{refusal}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER audit_log_pseudonymised_only ON audit_log")
        op.execute("DROP FUNCTION renewly_audit_pseudonymised_only()")
        op.execute("DROP TRIGGER audit_log_never_deleted ON audit_log")
        op.execute("""CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
                      FOR EACH ROW EXECUTE FUNCTION renewly_refuse_change('append-only')""")
    else:
        for name, *_ in SQLITE_GUARDS:
            op.execute(f"DROP TRIGGER {name}")
        _document_writes(OLD_PURPOSES)
        op.execute(f"""CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                       BEGIN SELECT RAISE(ABORT, '{AUDIT_CHANGED}'); END""")
    op.drop_index('ix_audit_log_target', table_name='audit_log')


def _document_writes(purposes: str) -> None:
    """SQLite changes a check by rebuilding the table; this one is empty outside a writer's transaction."""
    op.drop_table('document_writes')
    op.create_table('document_writes',
                    sa.Column('purpose', sa.String(length=16), nullable=False),
                    sa.CheckConstraint(purposes, name=op.f('ck_document_writes_purpose')),
                    sa.PrimaryKeyConstraint('purpose', name=op.f('pk_document_writes')))


# Each deleted account's entries, by what they are about.
_ENTRIES = """
SELECT a.id AS account_id, l.id, l.actor, l.action, l.reason, l.details FROM audit_log l
  JOIN accounts a ON l.target_type = 'account' AND l.target_id = CAST(a.id AS TEXT) AND a.status = 'deleted'
UNION ALL
SELECT s.account_id, l.id, l.actor, l.action, l.reason, l.details FROM audit_log l
  JOIN subscriptions s ON l.target_type = 'subscription' AND l.target_id = CAST(s.id AS TEXT)
  JOIN accounts a ON a.id = s.account_id AND a.status = 'deleted'
UNION ALL
SELECT c.account_id, l.id, l.actor, l.action, l.reason, l.details FROM audit_log l
  JOIN dunning_cases c ON l.target_type = 'dunning_case' AND l.target_id = CAST(c.id AS TEXT)
  JOIN accounts a ON a.id = c.account_id AND a.status = 'deleted'
UNION ALL
SELECT i.account_id, l.id, l.actor, l.action, l.reason, l.details FROM audit_log l
  JOIN invoices i ON l.target_type = 'invoice' AND l.target_id = i.number
  JOIN accounts a ON a.id = i.account_id AND a.status = 'deleted'
"""
_DELETED = "(SELECT id FROM accounts WHERE status = 'deleted')"
_BUYER_TEXTS = ("name", "line1", "line2", "postcode", "city", "vat_id")


def _pseudonymise_accounts_deleted_before(postgres: bool) -> None:
    conn = op.get_bind()

    def document(value):
        return json.loads(value) if isinstance(value, str) else value

    entries: dict[int, list[AuditEntry]] = {}
    for row in conn.execute(sa.text(_ENTRIES)):
        entries.setdefault(row.account_id, []).append(
            AuditEntry(id=row.id, actor=row.actor, action=row.action, reason=row.reason, details=document(row.details)))
    texts: dict[int, set[str]] = {}
    for account_id, buyer in conn.execute(sa.text(f"SELECT account_id, buyer FROM invoices WHERE account_id IN {_DELETED}")):
        texts.setdefault(account_id, set()).update(str(document(buyer).get(key) or "") for key in _BUYER_TEXTS)
    reasons: dict[tuple[str, str], Sequence[sa.Row[*tuple[Any, ...]]]] = {
        (table, actor): conn.execute(sa.text(f"SELECT id, account_id, reason, {actor} AS actor FROM {table} "
                                             f"WHERE account_id IN {_DELETED}")).all()
        for table, actor in (("reactivations", "granted_by"), ("parked_rows", "resolved_by"))}

    pseudonymisers, rewritten = {}, []
    for account_id in sorted(set(entries) | {row.account_id for rows in reasons.values() for row in rows}):
        known = KnownPersonalData(texts=frozenset(texts.get(account_id, ())))
        pseudonymisers[account_id], changed = pseudonymise(account_id, known, entries.get(account_id, []))
        rewritten += changed
    details = "CAST(:details AS jsonb)" if postgres else ":details"
    if rewritten:
        conn.execute(sa.text(f"UPDATE audit_log SET actor = :actor, reason = :reason, details = {details} WHERE id = :id"),
                     [{"id": e.id, "actor": e.actor, "reason": e.reason, "details": json.dumps(e.details)}
                      for e in rewritten])
    for (table, actor), rows in reasons.items():
        updates = [{"id": row.id, "reason": pseudonymisers[row.account_id].text(row.reason),
                    "actor": pseudonymisers[row.account_id].actor(row.actor) if row.actor is not None else None}
                   for row in rows]
        updates = [update for update, row in zip(updates, rows) if (update["reason"], update["actor"]) != row[2:]]
        if updates:
            conn.execute(sa.text(f"UPDATE {table} SET reason = :reason, {actor} = :actor WHERE id = :id"), updates)
    conn.execute(sa.text(f"UPDATE cards SET last4 = '' WHERE last4 <> '' AND account_id IN {_DELETED}"))
