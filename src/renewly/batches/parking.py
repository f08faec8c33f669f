"""Rows a batch could not process: parked with their reason, so that one bad row never stops the
others (a seat count whose invoice overflows, a case a policy cannot decide).

A batch works in slices, each in one transaction. When a slice fails as a whole, its rows are
taken again one at a time, each in a transaction of its own: those that fail alone are parked
(with the error as the reason, and a `batch.row_parked` event), the others are done. Claims skip
parked rows until the operator, having mended one, puts it back (`renewly problems resolve`).
Only what is wrong with the data is parked: a database that cannot be reached, a lost connection
or a deadlock stops the batch as before, to be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from renewly.adapters.db.bulk import insert_ignoring_conflicts
from renewly.adapters.db.tables import parked_rows
from renewly.adapters.logs import get_logger
from renewly.outbox import writer
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.errors import NotFound

log = get_logger(__name__)


def not_parked(subject: str, column) -> Any:
    """`column` names no row of `subject` that a batch left aside."""
    return ~exists().where(parked_rows.c.subject == subject, parked_rows.c.subject_id == column,
                           parked_rows.c.resolved_at.is_(None))


# PostgreSQL's SQLSTATEs of a database that cannot do the work whatever the rows: its classes of
# a lost connection (08), a transaction to run again (40: deadlock, serialization), resources
# (53: disk full, out of memory), an operator's intervention (57: shutdown, statement timeout)
# and system errors (58); and a read-only database (25006) or a role without a privilege (42501).
INFRASTRUCTURE_CLASSES = ("08", "40", "53", "57", "58")
INFRASTRUCTURE_STATES = ("25006", "42501")


def is_infrastructure(error: BaseException) -> bool:
    """A failure of the database or the connection, not of the data: nothing to park."""
    if isinstance(error, (OperationalError, InterfaceError, DisconnectionError)):
        return True
    if not isinstance(error, DBAPIError):
        return False
    state = getattr(error.orig, "sqlstate", None) or ""
    return (error.connection_invalidated or state[:2] in INFRASTRUCTURE_CLASSES
            or state in INFRASTRUCTURE_STATES)


@dataclass(frozen=True)
class Subject:
    id: int
    account_id: int | None


def one_by_one(app: Ports, batch: str, subject: str, rows: Iterable[Subject],
               process: Callable[[Connection, int], int], as_of: datetime) -> tuple[int, int, int]:
    """Process each row in a transaction of its own; park those that fail. Returns (what the
    processed rows counted, how many rows counted something, how many were parked). Slow on
    purpose: only a failed slice comes here."""
    done = worked = parked = 0
    for row in rows:
        try:
            with app.engine.begin() as conn:
                counted = process(conn, row.id)
            done, worked = done + counted, worked + bool(counted)
        except Exception as error:  # whatever the row makes fail, but the database itself
            if is_infrastructure(error):
                raise
            # Two workers that failed on the same slice park it once: the second finds it parked.
            parked += park(app, batch, subject, row, reason(error), as_of)
    return done, worked, parked


def reason(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(getattr(error, "orig", None) or error)
    return f"{type(error).__name__}: {' '.join(message.split())}"[:1000]


def park(app: Ports, batch: str, subject: str, row: Subject, why: str, as_of: datetime) -> bool:
    """Park the row, once; returns whether this call parked it."""
    log.warning("row parked", batch=batch, subject=subject, subject_id=row.id, reason=why)
    with app.engine.begin() as conn:
        added = conn.execute(insert_ignoring_conflicts(conn)(parked_rows)
                             .on_conflict_do_nothing(index_elements=["subject", "subject_id"],
                                                     index_where=parked_rows.c.resolved_at.is_(None))
                             .values(batch=batch, subject=subject, subject_id=row.id, account_id=row.account_id,
                                     reason=why, parked_at=as_of).returning(parked_rows.c.id)).scalar()
        if added is not None:
            writer.write(conn, writer.event(as_of, "batch.row_parked", row.account_id,
                                            {"batch": batch, "subject": subject, "subject_id": row.id,
                                             "reason": why}))
    return added is not None


def list_problems(app: Ports, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    query = select(parked_rows).order_by(parked_rows.c.id)
    if not include_resolved:
        query = query.where(parked_rows.c.resolved_at.is_(None))
    with app.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def resolve(app: Ports, problem_id: int, *, actor: str, note: str) -> dict[str, Any]:
    """Put a parked row back: the next run takes it again (and parks it again if it still fails)."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        row = conn.execute(select(parked_rows).where(parked_rows.c.id == problem_id,
                                                     parked_rows.c.resolved_at.is_(None))).first()
        if row is None:
            raise NotFound(f"no open problem {problem_id}", code="unknown_problem")
        conn.execute(parked_rows.update().where(parked_rows.c.id == problem_id)
                     .values(resolved_at=now, resolved_by=actor))
        audit(conn, now, actor, "problem.resolved", row.subject, row.subject_id, reason=note,
              details={"batch": row.batch, "problem": problem_id})
    return dict(row._mapping)
