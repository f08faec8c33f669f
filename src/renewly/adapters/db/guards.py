"""The ways past the triggers that keep issued documents as they were issued (R2.4), and the audit
log as it was written.

Triggers (migrations 0001 and 0009) refuse any statement that would rewrite an issued invoice or
credit note: its content, its lines, the document itself. Two writers have to touch its rows, and
each opens the way for its own statements only:

- issuing: `store_documents` writes a new document's lines right after the document;
- purging: the retention batch deletes documents whose retention has ended, lines first (R10.2).

The audit log is append-only (migrations 0001, 0009, 0010), but for one writer:

- pseudonymising: the retention batch rewrites the actor, reason and details of a deleted
  account's entries, its people's addresses becoming pseudonyms (R10.1); the triggers still refuse
  any other column, any other account's entries, and every DELETE.

On PostgreSQL the way is a transaction-local setting (`renewly.issuing`, `renewly.purging`,
`renewly.pseudonymising`); on SQLite a row of `document_writes`, deleted before the transaction
ends (triggers there cannot read a connection's temp tables). Either way a rollback closes it, and
no other transaction sees it. It guards against a bug or a mistyped statement, not against a
session that opens it on purpose: migration 0009 says why, docs/operations.md which database role
Renewly runs as.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import Connection, text

from renewly.adapters.db.bulk import is_postgres

Purpose = Literal["issuing", "purging"]


@contextmanager
def writing_documents(conn: Connection, purpose: Purpose) -> Iterator[None]:
    """Let the statements run inside this block write issued documents' rows for `purpose`."""
    with _open(conn, purpose):
        yield


@contextmanager
def pseudonymising_audit(conn: Connection) -> Iterator[None]:
    """Let the statements run inside this block rewrite the actor, reason and details of the audit
    entries of accounts already marked deleted (R10.1)."""
    with _open(conn, "pseudonymising"):
        yield


@contextmanager
def _open(conn: Connection, purpose: str) -> Iterator[None]:
    if is_postgres(conn):
        setting = f"renewly.{purpose}"
        conn.execute(text("SELECT set_config(:setting, 'on', true)"), {"setting": setting})
        yield
        # Closed again for the rest of the transaction. After an error the transaction is rolled
        # back (to its savepoint at least), which undoes the setting too.
        conn.execute(text("SELECT set_config(:setting, 'off', true)"), {"setting": setting})
        return
    conn.execute(text("INSERT INTO document_writes (purpose) VALUES (:purpose)"), {"purpose": purpose})
    try:
        yield
    finally:
        # Even when a statement in the block failed and the caller goes on: the row never commits.
        conn.execute(text("DELETE FROM document_writes WHERE purpose = :purpose"), {"purpose": purpose})
