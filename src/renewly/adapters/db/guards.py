"""The two ways past the triggers that keep issued documents as they were issued (R2.4).

Triggers (migrations 0001 and 0009) refuse any statement that would rewrite an issued invoice or
credit note: its content, its lines, the document itself. Two writers have to touch its rows, and
each opens the way for its own statements only:

- issuing: `store_documents` writes a new document's lines right after the document;
- purging: the retention batch deletes documents whose retention has ended, lines first (R10.2).

On PostgreSQL the way is a transaction-local setting (`renewly.issuing`, `renewly.purging`); on
SQLite a row of `document_writes`, deleted before the transaction ends (triggers there cannot read
a connection's temp tables). Either way a rollback closes it, and no other transaction sees it.
It guards against a bug or a mistyped statement, not against a session that opens it on purpose:
migration 0009 says why, docs/operations.md which database role Renewly runs as.
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
