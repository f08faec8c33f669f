"""The dunning sweep (R8): open a case per unpaid renewal invoice, take each step once, recover.

Kill Bill's three steps, per claimed slice of cases: build snapshots (one query), let
`domain.dunning.evaluate` decide, then apply every decision in the slice's transaction: steps
recorded (a unique key per case and step), charge requests for the payment batch, e-mails in
the outbox, banner and account status. Cases are claimed by `next_step_at`, so a sweep costs
what is due today, not what the database holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain

from sqlalchemy import Connection, and_, exists, func, or_, select

from renewly.adapters.db.bulk import among, chunked, insert_rows, is_postgres, update_rows
from renewly.adapters.db.tables import (
    accounts,
    cards,
    dunning_cases,
    dunning_steps,
    invoices,
    outbox,
    payment_attempts,
    payment_retries,
    reactivations,
)
from renewly.bootstrap import App
from renewly.domain.accounts import AccountStatus
from renewly.domain.calendar import local_date, local_midnight_utc
from renewly.domain.dunning import Audience, CaseSnapshot, Decision, Policy, evaluate
from renewly.domain.invoices import InvoiceKind, InvoiceStatus
from renewly.domain.payments import AttemptStatus
from renewly.services import notices
from renewly.services.invoicing import amount_due
from renewly.services.slices import WORKERS, run_slices


@dataclass
class DunningReport:
    cases_opened: int = 0
    steps_taken: int = 0
    emails: int = 0
    charges_requested: int = 0
    cancelled: int = 0
    reactivations_expired: int = 0

    def add(self, other: DunningReport) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


# Slices taken at once on PostgreSQL: one worker's Python decides and renders while the server
# writes the other's slice. A claim locks the cases' accounts too (SKIP LOCKED), so that no two
# workers, or sweeps, ever update one account at once.
def run_dunning(app: App, as_of: datetime, *, slice_size: int | None = None,
                workers: int = WORKERS) -> DunningReport:
    report = DunningReport()
    report.cases_opened = open_cases(app, as_of)
    size = slice_size or app.settings.batches.chunk_size
    for done in run_slices(app, lambda: _sweep(app, as_of, size), workers):
        report.add(done)
    report.reactivations_expired = expire_reactivations(app, as_of)
    return report


def _sweep(app: App, as_of: datetime, size: int) -> DunningReport:
    """Slices until none is left; a case locked by another worker is taken later, by either."""
    report = DunningReport()
    while True:
        with app.engine.begin() as conn:
            snapshots = claim_due_cases(conn, as_of, size)
            if not snapshots:
                return report
            apply_decisions(conn, app, snapshots, as_of, report)


def unpaid_renewal_invoices():
    declined = exists().where(payment_attempts.c.invoice_id == invoices.c.id,
                              payment_attempts.c.status == AttemptStatus.DECLINED.value)
    unsettled = exists().where(
        payment_attempts.c.invoice_id == invoices.c.id,
        payment_attempts.c.status.in_((AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value)))
    has_card = exists().where(cards.c.account_id == invoices.c.account_id, cards.c.status == "active")
    has_case = exists().where(dunning_cases.c.invoice_id == invoices.c.id)
    # A payment failed (or cannot be attempted: no card) and nothing is still waiting for an answer.
    return and_(invoices.c.status == InvoiceStatus.OPEN.value, invoices.c.kind == InvoiceKind.INVOICE.value,
                invoices.c.subscription_id.is_not(None), ~has_case, ~unsettled, or_(declined, ~has_card))


def open_cases(app: App, as_of: datetime) -> int:
    """A case for every renewal invoice whose payment failed; day 0 is its renewal date."""
    with app.engine.begin() as conn:
        # The open invoices without a case first, along two indexes (ix_invoices_open and the cases'
        # invoice_id): what is unpaid and new, not the whole table. Then what their payments say.
        new = conn.execute(select(invoices.c.id).where(
            invoices.c.status == InvoiceStatus.OPEN.value,
            ~exists().where(dunning_cases.c.invoice_id == invoices.c.id)).order_by(invoices.c.id)).scalars().all()
        rows = []
        for ids in chunked(new, 10_000):  # a renewal day may leave a million invoices not charged yet
            rows += conn.execute(
                select(invoices.c.id, invoices.c.account_id, invoices.c.period_start, accounts.c.timezone)
                .join(accounts, accounts.c.id == invoices.c.account_id)
                .where(among(conn, invoices.c.id, ids), unpaid_renewal_invoices(), invoices.c.issued_at <= as_of,
                       accounts.c.status.in_((AccountStatus.ACTIVE.value, AccountStatus.PAST_DUE.value)))
                .order_by(invoices.c.id)).all()
        new_cases = [{"account_id": row.account_id, "invoice_id": row.id, "day0": row.period_start, "status": "open",
                      "last_step": -1, "next_step_at": local_midnight_utc(row.period_start, row.timezone),
                      "opened_at": as_of, "closed_at": None} for row in rows]
        if not new_cases:
            return 0
        if is_postgres(conn):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        # Two sweeps at once: the unique invoice_id keeps one case per invoice.
        opened = conn.execute(insert(dunning_cases).on_conflict_do_nothing(index_elements=["invoice_id"])
                              .returning(dunning_cases.c.account_id, dunning_cases.c.invoice_id), new_cases).all()
        # Only the cases this sweep opened: the other sweep announces its own.
        notices.write(conn, [{"created_at": as_of, "topic": "dunning.case_opened", "account_id": c.account_id,
                              "payload": {"invoice_id": c.invoice_id}, "delivered_at": None} for c in opened])
    return len(opened)


@dataclass(frozen=True)
class DueCase:
    snapshot: CaseSnapshot
    invoice_id: int
    invoice_number: str
    amount_due: int
    currency: str
    account_name: str
    locale: str
    timezone: str
    account_status: str
    account_banner: str
    cancelled_at: datetime | None
    deletion_due_at: datetime | None


def claim_due_cases(conn: Connection, as_of: datetime, limit: int) -> list[DueCase]:
    """Lock up to `limit` due cases and their accounts, the longest due first; read their snapshots."""
    # Two statements, each along its indexes, so that a slice costs its own rows whatever the tables
    # hold: the due cases and their accounts, picked and locked along ix_dunning_cases_due; then
    # their invoices by primary key. (In one statement, the planner may join every open case.)
    query = (select(dunning_cases.c.id, dunning_cases.c.account_id, dunning_cases.c.invoice_id, dunning_cases.c.day0,
                    dunning_cases.c.last_step, accounts.c.name, accounts.c.locale, accounts.c.timezone,
                    accounts.c.status, accounts.c.banner, accounts.c.cancelled_at, accounts.c.deletion_due_at)
             .join(accounts, accounts.c.id == dunning_cases.c.account_id)
             .where(dunning_cases.c.status == "open", dunning_cases.c.next_step_at <= as_of,
                    accounts.c.status.in_((AccountStatus.ACTIVE.value, AccountStatus.PAST_DUE.value)))
             .order_by(dunning_cases.c.next_step_at, dunning_cases.c.id).limit(limit))
    if is_postgres(conn):
        # Accounts before cases (PostgreSQL locks in this order): a case whose account another worker
        # holds is skipped before its row is locked. The other way round, the case stayed locked,
        # unclaimed, and two workers freezing each other's accounts' cases waited for each other.
        query = query.with_for_update(of=(accounts, dunning_cases), skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return []
    last_attempt = (select(func.max(payment_attempts.c.created_at))
                    .where(payment_attempts.c.invoice_id == invoices.c.id).scalar_subquery())
    invoice_of = {invoice[0]: invoice for invoice in conn.execute(
        select(invoices.c.id, invoices.c.number, invoices.c.currency, amount_due().label("due"),
               last_attempt.label("last_attempt_at"))
        .where(among(conn, invoices.c.id, [row.invoice_id for row in rows]))).all()}
    cases = []
    # Rows unpacked by position: a slice of a mass-decline day builds a million of these.
    for (case_id, account_id, invoice_id, day0, last_step, name, locale, timezone, status, banner, cancelled_at,
         deletion_due_at) in rows:
        _, number, currency, due, last_attempt_at = invoice_of[invoice_id]
        last_attempt_day = local_date(last_attempt_at, timezone) if last_attempt_at else None
        cases.append(DueCase(CaseSnapshot(case_id, account_id, day0, last_step, last_attempt_day), invoice_id, number,
                             int(due), currency, name, locale, timezone, status, banner, cancelled_at, deletion_due_at))
    return cases


def apply_decisions(conn: Connection, app: App, cases: list[DueCase], as_of: datetime, report: DunningReport) -> None:
    policy = app.policy
    plans = _Plans(policy, as_of)
    decisions = [(case, plans.decide(case)) for case in cases]
    recipients = notices.billing_recipients(conn, {case.snapshot.account_id for case, (d, _) in decisions if d.email})
    step_rows, email_rows, retry_rows, events = [], [], [], []
    moved: dict[tuple, list[int]] = defaultdict(list)  # (last_step, next_step_at) -> the cases moved there
    account_changes: dict[int, dict] = {}
    for case, (decision, plan) in decisions:
        snapshot = case.snapshot
        if account_changes.get(snapshot.account_id, {}).get("status") == AccountStatus.CANCELLED:
            # Another case in this slice has just cancelled the account (a late sweep): this one
            # stops where it is, like the account's other cases below; no e-mail after "cancelled".
            continue
        moved[(max(snapshot.last_step, plan.last_taken),
               plans.next_step_at(snapshot.day0, decision.next_step, case.timezone))].append(snapshot.case_id)
        if not decision.changes_anything:
            continue
        step_rows.extend((snapshot.case_id, *step) for step in plan.steps)
        report.steps_taken += len(decision.steps)
        if decision.request_charge:
            retry_rows.append((case.invoice_id, f"dunning:{snapshot.case_id}:{plan.last_taken}", as_of, None))
        change = account_changes.setdefault(snapshot.account_id, _account_state(case))
        if Audience(change["banner"]).severity < decision.banner.severity:
            change["banner"] = decision.banner.value
        if decision.cancel and change["status"] != AccountStatus.CANCELLED:
            change.update(status=AccountStatus.CANCELLED.value, cancelled_at=change["cancelled_at"] or as_of)
            change["deletion_due_at"] = change["deletion_due_at"] or change["cancelled_at"] + timedelta(
                days=policy.deletion_days)
            report.cancelled += 1
        elif change["status"] == AccountStatus.ACTIVE:
            change["status"] = AccountStatus.PAST_DUE.value
        if decision.email:
            email_rows.append((case, decision, change))
        events.append((as_of, "dunning.steps_taken", snapshot.account_id,
                       {"case_id": snapshot.case_id, "steps": plan.step_names, "policy_version": policy.version},
                       None))

    # Cases that took the same steps on the same day move to the same state: one UPDATE for each.
    for (last_step, next_step_at), case_ids in moved.items():
        conn.execute(dunning_cases.update().where(among(conn, dunning_cases.c.id, case_ids))
                     .values(last_step=last_step, next_step_at=next_step_at))
    # Binary COPY: every value below has its column's Python type.
    insert_rows(conn, dunning_steps, step_rows, STEP_COLUMNS, binary=True)
    insert_rows(conn, payment_retries, retry_rows, RETRY_COLUMNS, binary=True)
    report.charges_requested += len(retry_rows)
    report.emails += len(email_rows)
    before = {case.snapshot.account_id: _account_state(case) for case in cases}
    # Only the accounts whose state moved are written: on most days of a case nothing does.
    changed = {account_id: change for account_id, change in account_changes.items() if change != before[account_id]}
    for account_id, change in changed.items():
        if (change["status"], change["banner"]) != (before[account_id]["status"], before[account_id]["banner"]):
            events.append((as_of, "account.dunning_state", account_id,
                           {"status": change["status"], "banner": change["banner"]}, None))
    update_rows(conn, accounts, [{"id": account_id, "updated_at": as_of, **change}
                                 for account_id, change in changed.items()])
    # A cancelled account's other cases stop where they are: no e-mail after "cancelled". Paying
    # during a reactivation recovers them all (a card update retries every unpaid invoice).
    cancelled = [account_id for account_id, change in changed.items()
                 if change["status"] == AccountStatus.CANCELLED
                 and before[account_id]["status"] != AccountStatus.CANCELLED]
    if cancelled:
        conn.execute(dunning_cases.update().where(dunning_cases.c.account_id.in_(cancelled),
                                                  dunning_cases.c.status == "open").values(next_step_at=None))
    cancel_index = next((i for i, s in enumerate(policy.steps) if s.cancel), None)
    # Rendered while the COPY streams: the server writes the first e-mails as Python renders the next.
    rendered = (_dunning_email(app, case, decision, change, recipients[case.snapshot.account_id], as_of, cancel_index)
                for case, decision, change in email_rows)
    insert_rows(conn, outbox, chain((tuple(row[column] for column in OUTBOX_COLUMNS) for row in rendered), events),
                OUTBOX_COLUMNS, binary=True)


STEP_COLUMNS = ("case_id", "step", "name", "day", "policy_version", "taken_at", "email", "charge_requested")
RETRY_COLUMNS = ("invoice_id", "reason", "requested_at", "attempt_id")
OUTBOX_COLUMNS = ("created_at", "topic", "account_id", "payload", "delivered_at")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a decision writes, the same for every case it is taken for."""

    last_taken: int  # the highest step taken now, or -1
    steps: tuple[tuple, ...]  # dunning_steps rows without their case_id
    step_names: list[str]


class _Plans:
    """Decisions and local midnights of one slice, each computed once.

    `evaluate` is pure and reads only a snapshot's dates and last step, so cases that share them
    share a decision: on a mass-decline day, a slice of thousands holds a handful of them.
    """

    def __init__(self, policy: Policy, as_of: datetime) -> None:
        self.policy, self.as_of = policy, as_of
        self._today: dict[str, date] = {}
        self._decided: dict[tuple, tuple[Decision, _Plan]] = {}
        self._midnights: dict[tuple, datetime | None] = {}

    def decide(self, case: DueCase) -> tuple[Decision, _Plan]:
        today = self._today.get(case.timezone)
        if today is None:
            today = self._today[case.timezone] = local_date(self.as_of, case.timezone)
        snapshot = case.snapshot
        key = (snapshot.day0, snapshot.last_step, snapshot.last_attempt_day, today)
        found = self._decided.get(key)
        if found is None:
            decision = evaluate(self.policy, snapshot, today)
            found = self._decided[key] = (decision, self._plan(decision))
        return found

    def _plan(self, decision: Decision) -> _Plan:
        policy = self.policy
        last = max(decision.steps, default=-1)
        rows = tuple((index, policy.steps[index].name, policy.steps[index].day, policy.version, self.as_of,
                      policy.steps[index].email if index == decision.email_step else None,
                      int(decision.request_charge and index == last)) for index in decision.steps)
        return _Plan(last_taken=last, steps=rows, step_names=[policy.steps[i].name for i in decision.steps])

    def next_step_at(self, day0: date, next_step: int | None, timezone: str) -> datetime | None:
        key = (day0, next_step, timezone)
        if key not in self._midnights:
            self._midnights[key] = (local_midnight_utc(self.policy.step_date(day0, next_step), timezone)
                                    if next_step is not None else None)
        return self._midnights[key]


def _account_state(case: DueCase) -> dict:
    return {"status": case.account_status, "banner": case.account_banner, "cancelled_at": case.cancelled_at,
            "deletion_due_at": case.deletion_due_at}


def _dunning_email(app: App, case: DueCase, decision: Decision, change: dict, recipients: list[str],
                   as_of: datetime, cancel_index: int | None) -> dict:
    policy = app.policy
    cancel_date = (local_date(change["cancelled_at"], case.timezone) if change["cancelled_at"] else
                   policy.step_date(case.snapshot.day0, cancel_index) if cancel_index is not None else None)
    deletion_date = cancel_date + timedelta(days=policy.deletion_days) if cancel_date else None
    values = notices.placeholders(policy=policy, locale=case.locale, account=case.account_name,
                                  invoice=case.invoice_number, amount=case.amount_due, currency=case.currency,
                                  renewal_date=case.snapshot.day0, cancel_date=cancel_date,
                                  deletion_date=deletion_date, support_email=app.settings.seller.support_email)
    return notices.email_row(policy, decision.email, case.locale, case.snapshot.account_id, recipients, values,
                             as_of, case_id=case.snapshot.case_id, step=policy.steps[decision.email_step].name,
                             policy_version=policy.version)


def recover_cases(conn: Connection, app: App, paid_invoice_ids: list[int], as_of: datetime) -> int:
    """R8.6/R11: a payment ends its case: confirmation to every billing contact; the account is
    active again and its banners go once no other case is open; a running reactivation ends paid."""
    if not paid_invoice_ids:
        return 0
    # The accounts first, in one order, as the sweep takes them: a case is only changed by whoever
    # holds its account, so a payment and a sweep never wait for each other in a circle.
    conn.execute(select(accounts.c.id)
                 .where(accounts.c.id.in_(select(invoices.c.account_id).where(invoices.c.id.in_(paid_invoice_ids))))
                 .order_by(accounts.c.id).with_for_update())
    rows = conn.execute(select(dunning_cases.c.id, dunning_cases.c.account_id, dunning_cases.c.day0,
                               invoices.c.number, invoices.c.total, invoices.c.currency, accounts.c.name,
                               accounts.c.locale, accounts.c.status)
                        .join(invoices, invoices.c.id == dunning_cases.c.invoice_id)
                        .join(accounts, accounts.c.id == dunning_cases.c.account_id)
                        .where(dunning_cases.c.invoice_id.in_(paid_invoice_ids),
                               dunning_cases.c.status == "open")).all()
    if not rows:
        return 0
    update_rows(conn, dunning_cases, [{"id": row.id, "status": "recovered", "closed_at": as_of, "next_step_at": None}
                                      for row in rows])
    account_ids = {row.account_id for row in rows}
    still_open = _open_case_banners(conn, app.policy, account_ids)
    recipients = notices.billing_recipients(conn, account_ids)
    policy = app.policy
    emails = [notices.email_row(policy, "payment_confirmed", row.locale, row.account_id, recipients[row.account_id],
                                notices.placeholders(policy=policy, locale=row.locale, account=row.name,
                                                     invoice=row.number, amount=row.total, currency=row.currency,
                                                     renewal_date=row.day0, cancel_date=None, deletion_date=None,
                                                     support_email=app.settings.seller.support_email),
                                as_of, case_id=row.id) for row in rows]
    status_of = {row.account_id: row.status for row in rows}
    healthy = [account_id for account_id in account_ids if account_id not in still_open]
    update_rows(conn, accounts, [{"id": account_id, "status": AccountStatus.ACTIVE.value, "banner": "none",
                                  "cancelled_at": None, "deletion_due_at": None, "updated_at": as_of}
                                 for account_id in healthy])
    update_rows(conn, accounts, [{"id": account_id, "banner": banner, "updated_at": as_of}
                                 for account_id, banner in still_open.items()])
    running = conn.execute(select(reactivations.c.id).where(reactivations.c.account_id.in_(healthy),
                                                             reactivations.c.outcome.is_(None))).scalars().all()
    update_rows(conn, reactivations, [{"id": rid, "outcome": "paid", "ended_at": as_of} for rid in running])
    events = [{"created_at": as_of, "topic": "dunning.recovered", "account_id": row.account_id,
               "payload": {"case_id": row.id, "invoice": row.number,
                           "reactivated": status_of[row.account_id] == AccountStatus.CANCELLED},
               "delivered_at": None} for row in rows]
    insert_rows(conn, outbox, emails + events)
    return len(rows)


def _open_case_banners(conn: Connection, policy: Policy, account_ids: set[int]) -> dict[int, str]:
    """The banner each account still owes to its other open cases."""
    banners: dict[int, Audience] = defaultdict(lambda: Audience.NONE)
    for row in conn.execute(select(dunning_cases.c.account_id, dunning_cases.c.last_step)
                            .where(dunning_cases.c.account_id.in_(account_ids), dunning_cases.c.status == "open")):
        audience = policy.steps[row.last_step].banner if row.last_step >= 0 else Audience.NONE
        banners[row.account_id] = max(banners[row.account_id], audience, key=lambda a: a.severity)
    return {account_id: banner.value for account_id, banner in banners.items()}


def expire_reactivations(app: App, as_of: datetime) -> int:
    """R9.3: a window that ends unpaid leaves the account cancelled; the deletion date stays."""
    with app.engine.begin() as conn:
        ended = conn.execute(select(reactivations.c.id, reactivations.c.account_id).where(
            reactivations.c.outcome.is_(None), reactivations.c.ends_at <= as_of)).all()
        update_rows(conn, reactivations, [{"id": row.id, "outcome": "expired", "ended_at": as_of} for row in ended])
        insert_rows(conn, outbox, [{"created_at": as_of, "topic": "reactivation.expired", "account_id": row.account_id,
                                    "payload": {"reactivation_id": row.id}, "delivered_at": None} for row in ended])
    return len(ended)


def next_dunning_at(conn: Connection) -> datetime | None:
    moments = [
        conn.execute(select(func.min(dunning_cases.c.next_step_at)).where(dunning_cases.c.status == "open")).scalar(),
        conn.execute(select(func.min(reactivations.c.ends_at)).where(reactivations.c.outcome.is_(None))).scalar(),
        conn.execute(select(func.min(invoices.c.issued_at)).join(accounts, accounts.c.id == invoices.c.account_id)
                     .where(unpaid_renewal_invoices(),
                            accounts.c.status.in_((AccountStatus.ACTIVE.value, AccountStatus.PAST_DUE.value)))
                     ).scalar(),
    ]
    moments = [m for m in moments if m is not None]
    return min(moments) if moments else None
