"""What a new policy file would do to the open dunning cases (`renewly policy check FILE --against`).

Read only: the database is opened as it is (never created, never upgraded), read in a read-only
transaction, and the test clock is read, never started. `domain.dunning.move_under` decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import make_url

from renewly.adapters.clock import SystemClock
from renewly.adapters.db.engine import (
    SchemaOutOfDate,
    current_revision,
    head_revision,
    missing_database_file,
    read_only_transaction,
)
from renewly.adapters.db.tables import accounts, dunning_cases
from renewly.dunning.rules.policy_change import CaseMove, OpenCase, move_under
from renewly.dunning.rules.schedule import IN_DUNNING, Policy
from renewly.ports import Ports
from renewly.shared.calendar import local_date
from renewly.shared.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class CaseImpact:
    case_id: int
    account_id: int
    last_step: str | None
    move: CaseMove


@dataclass(frozen=True, slots=True)
class PolicyImpact:
    database: str  # its URL, without a password
    current: Policy
    new: Policy
    open_cases: int
    moved: list[CaseImpact]

    def cancellations(self, move: CaseMove) -> tuple:
        """The cancellation's date under the policy in force and under the new one (None: none)."""
        return move.cancellation(move.was, self.current), move.cancellation(move.now, self.new)

    def counts(self) -> dict[str, int]:
        moves = [impact.move for impact in self.moved]
        cancellations = [self.cancellations(move) for move in moves]
        return {"open_cases": self.open_cases, "would_move": len(moves),
                "last_step_gone": sum(move.last_step_gone for move in moves),
                "steps_due_at_once": sum(bool(move.due_at_once) for move in moves),
                "cancellation_moved": sum(was != now for was, now in cancellations),
                "cancelled_at_once": sum(now == move.today and was != move.today
                                         for move, (was, now) in zip(moves, cancellations, strict=True)),
                "notices_dropped": sum(move.notice_dropped for move in moves)}


def policy_impact(app: Ports, new: Policy) -> PolicyImpact:
    url = make_url(app.settings.database_url)
    path = missing_database_file(app.settings.database_url)
    if path is not None:
        raise InvalidInput(f"no database at {path}: --against reads the configured database "
                           "(RENEWLY_DATABASE_URL) and creates none", code="no_database")
    revision = current_revision(app.engine)
    if revision != head_revision():
        raise SchemaOutOfDate(f"the database schema is at {revision or 'no revision'}, this Renewly needs "
                              f"{head_revision()}: run `renewly db upgrade` first")
    current = app.policy
    now = _now(app)
    with read_only_transaction(app.engine) as conn:
        rows = conn.execute(
            select(dunning_cases.c.id, dunning_cases.c.account_id, dunning_cases.c.day0,
                   dunning_cases.c.last_step_name, dunning_cases.c.last_step_day, dunning_cases.c.warned_at,
                   dunning_cases.c.awaiting_step_name, accounts.c.timezone)
            .join(accounts, accounts.c.id == dunning_cases.c.account_id)
            .where(dunning_cases.c.status == "open", accounts.c.status.in_(IN_DUNNING))
            .order_by(dunning_cases.c.id)).all()
    decided: dict[tuple, CaseMove] = {}  # cases alike move alike: a mass-decline day's thousands
    moved = []
    for case_id, account_id, day0, last_name, last_day, warned_at, awaiting, timezone in rows:
        today = local_date(now, timezone)
        case = OpenCase(day0, last_name, last_day, local_date(warned_at, timezone) if warned_at else None, awaiting)
        move = decided.get((case, today))
        if move is None:
            move = decided[(case, today)] = move_under(current, new, case, today)
        if move.moves:
            moved.append(CaseImpact(case_id, account_id, last_name, move))
    return PolicyImpact(url.render_as_string(hide_password=True), current, new, len(rows), moved)


def _now(app: Ports) -> datetime:
    """The clock's now, read only: a test clock never read yet is not started here (the system's
    now stands in for it)."""
    test_clock = app.test_clock
    stored = test_clock.peek() if test_clock is not None else None
    return stored or SystemClock().now()
