"""The dunning sweep (R8): one case per account in dunning, each step taken once.

Kill Bill's three steps, per claimed slice of cases: snapshots (three queries), `evaluate`
decides which steps are due (pure, once per distinct snapshot) and `decide_case` what each case
becomes (pure, `dunning/rules/sweep.py`), and every decision is applied in the slice's
transaction: the steps recorded (a unique key per case and step), the charges asked of the
payment batch, the notice (e-mail, banner, account status) given now or left to wait for the
answers of those charges (`dunning_outcomes` gives it), the next step's time. Cases are claimed
by `next_step_at`, so a sweep costs what is due today, not what the database holds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Row, exists, func, select, text

from renewly.accounts.accounts import lock_accounts
from renewly.adapters.db.bulk import among, chunked, insert_ignoring_conflicts, insert_rows, update_rows
from renewly.adapters.db.locks import claim_unheld, several_writers
from renewly.adapters.db.tables import (
    accounts,
    cards,
    dunning_case_invoices,
    dunning_cases,
    dunning_schedule,
    dunning_steps,
    invoices,
    parked_rows,
    reactivations,
    subscriptions,
)
from renewly.batches.parking import Subject, is_infrastructure, not_parked, one_by_one
from renewly.batches.reports import Reported, parked_note
from renewly.batches.slices import WORKERS, run_slices
from renewly.billing.rules.invoices import InvoiceStatus
from renewly.dunning import notices as dunning_notices
from renewly.dunning.notices import NoticeCase, case_invoices
from renewly.dunning.recovery import close_settled_cases, unpaid_renewal_invoices
from renewly.dunning.rules.banners import banners_seen
from renewly.dunning.rules.notices import CaseInvoice
from renewly.dunning.rules.schedule import (
    IN_DUNNING,
    CaseSnapshot,
    Decision,
    Policy,
    evaluate,
    place,
)
from renewly.dunning.rules.sweep import days0, decide_case, recorded_steps, warned_by_default
from renewly.outbox import writer
from renewly.outbox.writer import OutboxRow
from renewly.payments.retries import dunning_reason, request_retries, retry_requests
from renewly.ports import Ports
from renewly.shared.calendar import local_date, local_midnight_utc


@dataclass
class DunningReport(Reported):
    cases_opened: int = 0
    invoices_joined: int = 0  # issued while their account was in dunning: they follow its case
    parked: int = 0  # cases the sweep could not decide or apply: left aside, with the reason
    steps_taken: int = 0
    notices: int = 0  # notices given now (an e-mail and a banner, as the step says)
    emails: int = 0
    charges_requested: int = 0
    notices_waiting: int = 0  # notices left to the answers of the charges requested
    cancelled: int = 0
    reactivations_expired: int = 0
    rescheduled: int = 0  # open cases made due at once by a schedule other than the one they were given under

    def add(self, other: DunningReport) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    @property
    def did_anything(self) -> bool:
        return bool(self.cases_opened or self.invoices_joined or self.steps_taken or self.reactivations_expired)

    def describe(self) -> str:
        return (f"{self.cases_opened} case(s) opened, {self.invoices_joined} invoice(s) joined an open case, "
                f"{self.steps_taken} step(s) taken, {self.emails} e-mail(s), {self.charges_requested} "
                f"charge(s) requested ({self.notices_waiting} notice(s) wait for their answers), "
                f"{self.cancelled} account(s) cancelled, {self.reactivations_expired} reactivation(s) ended "
                f"unpaid" + parked_note(self))


# Slices taken at once on PostgreSQL: one worker's Python decides and renders while the server
# writes the other's slice. A claim locks the cases' accounts too (SKIP LOCKED), so that no two
# workers, or sweeps, ever update one account at once.
def run_dunning(app: Ports, as_of: datetime, *, slice_size: int | None = None,
                workers: int = WORKERS) -> DunningReport:
    report = DunningReport()
    report.rescheduled = reschedule_under(app, as_of)
    report.cases_opened, report.invoices_joined = open_cases(app, as_of)
    size = slice_size or app.settings.batches.chunk_size
    for done in run_slices(app, lambda: _sweep(app, as_of, size), workers):
        report.add(done)
    if not app.stop.asked:
        report.reactivations_expired = expire_reactivations(app, as_of)
    return report


# A case whose account someone else holds (a payment batch settling its charges, a credit note)
# is skipped; the sweep looks again this many times, a moment apart, before it leaves it to the
# next tick, so that one run leaves nothing due undone when the holder is quick, as they all are.
LOOKS_AGAIN, A_MOMENT = 20, 0.05


def _sweep(app: Ports, as_of: datetime, size: int) -> DunningReport:
    """Slices until none is left; a case locked by another worker is taken later, by either."""
    report = DunningReport()
    looks = stuck = 0
    while not app.stop.asked:  # asked to stop: the cases left stay due for the next sweep
        claimed: list[int] = []
        try:
            with app.engine.begin() as conn:
                cases = claim_due_cases(conn, app.policy, as_of, size)
                claimed = [case.notice.case_id for case in cases]
                if cases:
                    apply_decisions(conn, app, cases, as_of, report)
                    continue
                if looks == LOOKS_AGAIN or not several_writers(conn) or not _due_left(conn, as_of):
                    return report
        except Exception as error:
            if is_infrastructure(error):
                raise
            if _one_by_one(app, as_of, report) or _parked_meanwhile(app, claimed):
                stuck = 0
                continue
            # No case of the slice taken or parked alone: the other worker claimed them again
            # meanwhile (it takes or parks them in a moment: the case a flaky test caught), or the
            # slice fails whatever its cases, not a case's fault, and trying again would loop.
            stuck += 1
            if stuck > LOOKS_AGAIN or not several_writers(app.engine):  # no other worker to wait for
                raise
            time.sleep(A_MOMENT)
            continue
        looks += 1
        time.sleep(A_MOMENT)
    return report


def _one_by_one(app: Ports, as_of: datetime, report: DunningReport) -> bool:
    """A case made the slice fail (a policy it cannot follow, data it cannot hold): the slice
    again, one case at a time, parking the one that fails. Returns whether a case was taken or
    parked."""
    with app.engine.connect() as conn:
        due = conn.execute(_due_cases_query(as_of, app.settings.batches.chunk_size)).all()

    def one_case(conn: Connection, case_id: int) -> int:
        cases = claim_due_cases(conn, app.policy, as_of, 1, case_id=case_id)
        if cases:
            apply_decisions(conn, app, cases, as_of, report)
        return len(cases)

    _, taken, parked = one_by_one(app, "dunning", "dunning_case", [Subject(row.id, row.account_id) for row in due],
                                  one_case, as_of)
    report.parked += parked
    return bool(taken or parked)


def _parked_meanwhile(app: Ports, case_ids: list[int]) -> bool:
    """Whether a case of a failed slice is parked now: the other worker (or sweep) failed on the
    same case at the same moment and parked it first, so that this one's pass one at a time
    found nothing left to take or park. The next claim skips it."""
    if not case_ids:
        return False
    with app.engine.connect() as conn:
        return conn.execute(select(parked_rows.c.id).where(
            parked_rows.c.subject == "dunning_case", among(conn, parked_rows.c.subject_id, case_ids),
            parked_rows.c.resolved_at.is_(None)).limit(1)).first() is not None


def _due_left(conn: Connection, as_of: datetime) -> bool:
    return conn.execute(_due_cases_query(as_of, 1)).first() is not None


# -- a new policy -----------------------------------------------------------------------------------

def reschedule_under(app: Ports, as_of: datetime) -> int:
    """A schedule in force (steps, days, minimum warning) other than the one the open cases were
    scheduled under: every case scheduled later is due now, once, so that this sweep places it in
    the new policy (by the name of its last step) and schedules its next step: a step the new
    policy moved earlier comes on its new day, not on the day the old one gave. One sweep records
    the change; another at once finds it recorded. Returns the cases made due."""
    policy = app.policy
    key = policy.schedule_key
    values = {"schedule_key": key, "policy_version": policy.version, "changed_at": as_of}
    with app.engine.begin() as conn:
        stored = conn.execute(select(dunning_schedule.c.schedule_key).where(dunning_schedule.c.id == 1)).scalar()
        if stored == key:
            return 0
        if stored is None:
            changed = conn.execute(insert_ignoring_conflicts(conn)(dunning_schedule).values(id=1, **values)
                                   .on_conflict_do_nothing(index_elements=["id"])).rowcount
        else:
            changed = conn.execute(dunning_schedule.update().where(dunning_schedule.c.id == 1,
                                                                   dunning_schedule.c.schedule_key == stored)
                                   .values(**values)).rowcount
        if not changed:
            return 0
        # Not the cases without a next step (none left, or a cancellation waiting for the notice
        # of its warning, which schedules it under the policy then in force).
        return conn.execute(dunning_cases.update().where(dunning_cases.c.status == "open",
                                                         dunning_cases.c.next_step_at > as_of)
                            .values(next_step_at=as_of)).rowcount


# -- opening cases ----------------------------------------------------------------------------------

def open_cases(app: Ports, as_of: datetime) -> tuple[int, int]:
    """A case for each account with an unpaid renewal invoice and no open case (day 0: the
    earliest renewal date among them); an invoice of an account already in dunning joins its
    case. Returns (cases opened, invoices joined to a case already open)."""
    with app.engine.begin() as conn:
        # The open invoices without a case first, along two indexes (ix_invoices_open and the case
        # invoices' primary key): what is unpaid and new, not the whole table. Then their payments.
        new = conn.execute(select(invoices.c.id).where(
            invoices.c.status == InvoiceStatus.OPEN.value,
            ~exists().where(dunning_case_invoices.c.invoice_id == invoices.c.id)).order_by(invoices.c.id)
        ).scalars().all()
        rows: list[Row[*tuple[Any, ...]]] = []
        for ids in chunked(new, 10_000):  # a renewal day may leave a million invoices not charged yet
            rows += conn.execute(
                select(invoices.c.id, invoices.c.account_id, invoices.c.period_start, accounts.c.timezone,
                       subscriptions.c.created_at.label("subscribed_at"))
                .join(accounts, accounts.c.id == invoices.c.account_id)
                .join(subscriptions, subscriptions.c.id == invoices.c.subscription_id)
                .where(among(conn, invoices.c.id, ids), unpaid_renewal_invoices(), invoices.c.issued_at <= as_of,
                       accounts.c.status.in_(IN_DUNNING))
                .order_by(invoices.c.id)).all()
        if not rows:
            return 0, 0
        day0_of = days0((row.account_id, row.period_start, row.subscribed_at, row.timezone) for row in rows)
        # The accounts, as everyone who changes their cases takes them: a payment batch closing a
        # case now either commits first (its case is not found open below) or waits for these.
        lock_accounts(conn, day0_of)
        insert = insert_ignoring_conflicts(conn)
        # Two sweeps at once: the unique index of open cases keeps one per account, and the other
        # sweep's invoices join it below.
        opened = conn.execute(
            insert(dunning_cases).on_conflict_do_nothing(index_elements=["account_id"],
                                                         index_where=text("status = 'open'"))
            .returning(dunning_cases.c.id, dunning_cases.c.account_id),
            [{"account_id": account_id, "day0": day0, "status": "open", "last_step_name": None,
              "last_step_day": None, "next_step_at": local_midnight_utc(day0, zone), "awaiting_step_name": None,
              "warned_at": None,
              "opened_at": as_of, "closed_at": None} for account_id, (day0, zone) in day0_of.items()]).all()
        case_of = dict(conn.execute(select(dunning_cases.c.account_id, dunning_cases.c.id).where(
            among(conn, dunning_cases.c.account_id, list(day0_of)), dunning_cases.c.status == "open")).all())
        added = conn.execute(
            insert(dunning_case_invoices).on_conflict_do_nothing(index_elements=["invoice_id"])
            .returning(dunning_case_invoices.c.invoice_id, dunning_case_invoices.c.case_id),
            [{"invoice_id": row.id, "case_id": case_of[row.account_id], "added_at": as_of} for row in rows]).all()
        new_cases = {case_id for case_id, _ in opened}
        account_of = {case_id: account_id for account_id, case_id in case_of.items()}
        invoices_of: dict[int, list[int]] = defaultdict(list)
        for invoice_id, case_id in added:
            invoices_of[case_id].append(invoice_id)
        # Only what this sweep did: another sweep at once announces its own.
        writer.write_many(conn, [
            writer.event(as_of, "dunning.case_opened" if case_id in new_cases else "dunning.invoices_joined",
                         account_of[case_id], {"case_id": case_id, "invoice_ids": sorted(ids)})
            for case_id, ids in sorted(invoices_of.items())])
    joined = sum(len(ids) for case_id, ids in invoices_of.items() if case_id not in new_cases)
    return len(opened), joined


# -- claiming due cases -----------------------------------------------------------------------------

@dataclass(slots=True)
class DueCase:
    notice: NoticeCase  # the case, its account and its unpaid invoices, as a notice needs them
    snapshot: CaseSnapshot  # where the case stands in the policy in force (`place`)
    awaiting_step: str | None  # the name of the step whose notice waits for its charges
    has_card: bool
    # Past the warning step of the policy in force without a warning day: a policy that gained a
    # minimum warning, or a warning step, since the case passed it. Counted warned today (and so
    # recorded), so that its cancellation comes the minimum warning from now, never stuck.
    warned_now: bool = False


def _due_cases_query(as_of: datetime, limit: int, *columns):
    """The due cases, along ix_dunning_cases_due, the longest due first; parked ones left aside."""
    return (select(dunning_cases.c.id, dunning_cases.c.account_id, *columns)
            .join(accounts, accounts.c.id == dunning_cases.c.account_id)
            .where(dunning_cases.c.status == "open", dunning_cases.c.next_step_at <= as_of,
                   accounts.c.status.in_(IN_DUNNING), not_parked("dunning_case", dunning_cases.c.id))
            .order_by(dunning_cases.c.next_step_at, dunning_cases.c.id).limit(limit))


def claim_due_cases(conn: Connection, policy: Policy, as_of: datetime, limit: int, *,
                    case_id: int | None = None) -> list[DueCase]:
    """Lock up to `limit` due cases and their accounts, the longest due first; read their snapshots."""
    # Separate statements, each along its indexes, so that a slice costs its own rows whatever the
    # tables hold: the due cases and their accounts, picked and locked along ix_dunning_cases_due;
    # then their unpaid invoices; then their cards. (In one statement, the planner may join every
    # open case.)
    query = _due_cases_query(as_of, limit, dunning_cases.c.day0, dunning_cases.c.last_step_name,
                             dunning_cases.c.last_step_day, dunning_cases.c.awaiting_step_name,
                             dunning_cases.c.warned_at, accounts.c.name, accounts.c.locale, accounts.c.timezone,
                             accounts.c.status, accounts.c.banner)
    if case_id is not None:
        query = query.where(dunning_cases.c.id == case_id)
    # Accounts before cases (PostgreSQL locks in this order): a case whose account another worker
    # holds is skipped before its row is locked. The other way round, the case stayed locked,
    # unclaimed, and two workers freezing each other's accounts' cases waited for each other.
    # NO KEY UPDATE, as lock_accounts: it keeps out every other writer of the account but lets
    # the foreign keys that point at it be checked (a payment batch's new attempt), which FOR
    # UPDATE blocked: that batch held an invoice this sweep asked a charge for, a deadlock.
    query = claim_unheld(query, conn, of=(accounts, dunning_cases), key_share=True)
    rows = conn.execute(query).all()
    if not rows:
        return []
    unpaid = case_invoices(conn, [row[0] for row in rows], {row[0]: row[9] for row in rows})
    with_card = set(conn.execute(select(cards.c.account_id).where(
        among(conn, cards.c.account_id, [row[1] for row in rows]), cards.c.status == "active")).scalars())
    no_invoices: list[CaseInvoice] = []
    cases = []
    places: dict[tuple, int] = {}  # a mass-decline day's cases stand at a handful of steps
    # Rows unpacked by position: a slice of a mass-decline day builds a million of these.
    for (case_id, account_id, day0, last_name, last_day, awaiting_step, warned_at, name, locale, timezone, status,
         banner) in rows:
        key = (last_name, last_day, warned_at is not None)
        last_step = places.get(key)
        if last_step is None:
            last_step = places[key] = place(policy, last_name, last_day, warned=warned_at is not None)
        warned_day = local_date(warned_at, timezone) if warned_at else None
        unwarned = warned_by_default(policy, last_step, warned_day, awaiting_step)
        if unwarned:
            warned_day = local_date(as_of, timezone)
        cases.append(DueCase(
            NoticeCase(case_id, account_id, day0, name, locale, timezone, status, banner,
                       unpaid.get(case_id, no_invoices)),
            CaseSnapshot(day0, last_step, warned_day), awaiting_step, account_id in with_card, unwarned))
    return cases


# -- applying decisions -----------------------------------------------------------------------------

STEP_COLUMNS = ("case_id", "step", "name", "day", "policy_version", "taken_at", "email", "charge_requested")


@dataclass
class _Slice:
    # What cases' rows become (last step, next step's moment, awaited step, warned now): cases
    # that move alike are written by one UPDATE.
    moves: dict[tuple, list[int]] = field(default_factory=lambda: defaultdict(list))
    steps: list[tuple] = field(default_factory=list)
    retries: list[tuple] = field(default_factory=list)
    notices: list[tuple[NoticeCase, int, str | None]] = field(default_factory=list)  # (case, step, reason)
    events: list[OutboxRow] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)  # cases with nothing left unpaid


def apply_decisions(conn: Connection, app: Ports, cases: list[DueCase], as_of: datetime, report: DunningReport) -> None:
    policy = app.policy
    plans = _Plans(policy, as_of)
    work = _Slice()
    for case in cases:
        _apply(case, plans, policy, as_of, work, report)

    # Cases that took the same steps on the same day move to the same state: one UPDATE for each.
    for (last_step, next_step_at, awaiting_step, warned), case_ids in work.moves.items():
        values = {"next_step_at": next_step_at, "awaiting_step_name": awaiting_step}
        if last_step is not None:
            values["last_step_name"], values["last_step_day"] = last_step
        if warned:
            values["warned_at"] = as_of
        conn.execute(dunning_cases.update().where(among(conn, dunning_cases.c.id, case_ids)).values(**values))
    # Binary COPY: every value below has its column's Python type.
    insert_rows(conn, dunning_steps, work.steps, STEP_COLUMNS, binary=True)
    report.charges_requested += request_retries(conn, work.retries)
    given = dunning_notices.give(conn, app, work.notices, as_of)
    report.notices += len(work.notices)
    report.emails += given.emails
    report.cancelled += given.cancelled
    writer.write_many(conn, chain(given.rows, work.events))
    close_settled_cases(conn, app, work.settled, as_of)


def _apply(case: DueCase, plans: _Plans, policy: Policy, as_of: datetime, work: _Slice,
           report: DunningReport) -> None:
    """Decide (`decide_case`, pure) what a due case becomes, and gather the rows to write."""
    notice = case.notice
    timezone = notice.timezone
    decision, plan = plans.decide(case)
    outcome = decide_case(policy, decision, case.snapshot, notice.unpaid, has_card=case.has_card,
                          awaiting_step=case.awaiting_step, warned_now=case.warned_now,
                          today=plans.today(timezone))
    if outcome.settled:
        work.settled.append(notice.case_id)
        return
    move = (outcome.last_step, plans.moment(outcome.next_step_on, timezone), outcome.awaiting_step, outcome.warned)
    work.moves[move].append(notice.case_id)
    if outcome.last_step is None:  # nothing taken: only its next step's moment
        return
    charged = outcome.charge
    work.steps.extend((notice.case_id, *row) for row in (plan.charged if charged else plan.uncharged))
    work.retries.extend(retry_requests(charged, dunning_reason(notice.case_id, outcome.last_step[0]), as_of))
    report.steps_taken += len(decision.steps)
    if outcome.notice_now:
        if decision.notice_step is None:
            raise ValueError(f"case {notice.case_id}: a notice to give now, and no step to give it for")
        work.notices.append((notice, decision.notice_step, outcome.reason))
    else:
        report.notices_waiting += 1
    work.events.append(writer.event(as_of, "dunning.steps_taken", notice.account_id,
                                    {"case_id": notice.case_id, "steps": plan.step_names,
                                     "policy_version": policy.version, "charges_requested": len(charged),
                                     "notice": "given" if outcome.notice_now else "awaiting_charges"}))


@dataclass(frozen=True, slots=True)
class _Plan:
    """The step rows a decision writes (without their case_id), with and without a charge."""

    charged: tuple[tuple, ...]
    uncharged: tuple[tuple, ...]
    step_names: list[str]


class _Plans:
    """Decisions, step rows and local midnights of one slice, each computed once.

    `evaluate` is pure and reads only a snapshot's dates and last step, so cases that share them
    share a decision: on a mass-decline day, a slice of thousands holds a handful of them.
    """

    def __init__(self, policy: Policy, as_of: datetime) -> None:
        self.policy, self.as_of = policy, as_of
        self._today: dict[str, date] = {}
        self._decided: dict[tuple, tuple[Decision, _Plan]] = {}
        self._midnights: dict[tuple, datetime | None] = {}

    def today(self, timezone: str) -> date:
        today = self._today.get(timezone)
        if today is None:
            today = self._today[timezone] = local_date(self.as_of, timezone)
        return today

    def decide(self, case: DueCase) -> tuple[Decision, _Plan]:
        snapshot = case.snapshot
        today = self.today(case.notice.timezone)
        key = (snapshot, today)
        found = self._decided.get(key)
        if found is None:
            decision = evaluate(self.policy, snapshot, today)
            found = self._decided[key] = (decision, self._plan(decision))
        return found

    def _plan(self, decision: Decision) -> _Plan:
        policy, as_of = self.policy, self.as_of

        def rows(charged: bool) -> tuple[tuple, ...]:
            return tuple((index, name, day, policy.version, as_of, email, charge_requested)
                         for index, name, day, email, charge_requested
                         in recorded_steps(policy, decision, charged=charged))
        return _Plan(rows(True), rows(False), [policy.steps[i].name for i in decision.steps])

    def moment(self, day: date | None, timezone: str) -> datetime | None:
        if day is None:
            return None
        key = (day, timezone)
        if key not in self._midnights:
            self._midnights[key] = local_midnight_utc(day, timezone)
        return self._midnights[key]


# -- reactivations, and when there is work ----------------------------------------------------------

def expire_reactivations(app: Ports, as_of: datetime) -> int:
    """R9.3: a window that ends unpaid leaves the account cancelled; the deletion date stays."""
    def ended_windows(conn: Connection):
        return conn.execute(select(reactivations.c.id, reactivations.c.account_id, accounts.c.status,
                                   accounts.c.banner)
                            .join(accounts, accounts.c.id == reactivations.c.account_id)
                            .where(reactivations.c.outcome.is_(None), reactivations.c.ends_at <= as_of)).all()

    with app.engine.begin() as conn:
        # Their accounts first, then again what has ended: a payment that ended a window paid
        # meanwhile has committed, and its window is not found here.
        lock_accounts(conn, {row.account_id for row in ended_windows(conn)})
        ended = ended_windows(conn)
        update_rows(conn, reactivations, [{"id": row.id, "outcome": "expired", "ended_at": as_of} for row in ended])
        writer.write_many(conn, [row for ended_one in ended for row in (
            writer.event(as_of, "reactivation.expired", ended_one.account_id, {"reactivation_id": ended_one.id}),
            # The owner's banner goes back to the cancelled page.
            writer.event(as_of, "account.dunning_state", ended_one.account_id,
                         {"status": ended_one.status, "banners": banners_seen(ended_one.banner, ended_one.status)}))])
    return len(ended)


# A schedule the open cases were not scheduled under: work due as soon as the sweep can run.
AT_ONCE = datetime.min.replace(tzinfo=UTC)


def next_dunning_at(conn: Connection, app: Ports) -> datetime | None:
    if conn.execute(select(dunning_schedule.c.schedule_key)).scalar() != app.policy.schedule_key and conn.execute(
            select(dunning_cases.c.id).where(dunning_cases.c.status == "open",
                                             dunning_cases.c.next_step_at.is_not(None)).limit(1)).first():
        return AT_ONCE
    moments = [
        conn.execute(select(func.min(dunning_cases.c.next_step_at)).where(
            dunning_cases.c.status == "open", not_parked("dunning_case", dunning_cases.c.id))).scalar(),
        conn.execute(select(func.min(reactivations.c.ends_at)).where(reactivations.c.outcome.is_(None))).scalar(),
        conn.execute(select(func.min(invoices.c.issued_at)).join(accounts, accounts.c.id == invoices.c.account_id)
                     .where(unpaid_renewal_invoices(), accounts.c.status.in_(IN_DUNNING))).scalar(),
    ]
    found = [moment for moment in moments if moment is not None]
    return min(found) if found else None
