"""A dunning step's notice: what tells people a step was taken, given once its outcome is known.

The notice of a step is its e-mail to every billing contact (R4.3), naming every unpaid invoice
of the case, their total and why the last charge failed, in the account's language (R12); the
banner members see (R8.3, R8.4); the account's status (past due, or cancelled: R8.5, with the
deletion date of R10.1); and an `account.dunning_state` event saying what each role now sees.
The sweep gives it when the step needs no charge; the payment batch gives it when the step's
charges are answered (`dunning_outcomes`). Both read a case the same way (`case_invoices`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, func, select

from renewly.adapters.db.bulk import among, update_rows
from renewly.adapters.db.tables import accounts, dunning_case_invoices, invoices, payment_attempts
from renewly.bootstrap import App
from renewly.domain.accounts import AccountStatus
from renewly.domain.calendar import local_date, local_midnight_utc
from renewly.domain.dunning import Policy, banners_seen, deletion_date
from renewly.domain.invoices import InvoiceStatus
from renewly.domain.payments import AttemptStatus
from renewly.services import notices
from renewly.services.invoicing import amount_due

OUTBOX_COLUMNS = ("created_at", "topic", "account_id", "payload", "delivered_at")


@dataclass(slots=True)
class CaseInvoice:
    """An unpaid invoice of a case, and what its latest charge attempt says."""

    invoice_id: int
    number: str
    due: int
    currency: str
    last_attempt_day: date | None  # local date of the latest attempt
    unsettled: bool  # the latest attempt still waits for the gateway's answer
    decline_code: str | None  # the latest attempt's, if it was declined
    attempt_id: int | None = None  # the latest attempt


@dataclass(slots=True)
class NoticeCase:
    """A case as its notice needs it: the case, its account now, its unpaid invoices."""

    case_id: int
    account_id: int
    day0: date
    name: str
    locale: str
    timezone: str
    status: str
    banner: str
    unpaid: list[CaseInvoice]


def case_invoices(conn: Connection, case_ids: list[int], timezone_of: dict[int, str]) -> dict[int, list[CaseInvoice]]:
    """The unpaid invoices of each case, with what their latest charge attempt says."""
    if not case_ids:
        return {}
    latest = payment_attempts.alias("latest")
    latest_id = (select(func.max(payment_attempts.c.id)).where(payment_attempts.c.invoice_id == invoices.c.id)
                 .scalar_subquery())
    found: dict[int, list[CaseInvoice]] = defaultdict(list)
    unsettled = (AttemptStatus.PENDING, AttemptStatus.UNKNOWN)
    for case_id, invoice_id, number, currency, due, attempt_id, attempted_at, status, decline_code in conn.execute(
            select(dunning_case_invoices.c.case_id, invoices.c.id, invoices.c.number, invoices.c.currency,
                   amount_due().label("due"), latest.c.id, latest.c.created_at, latest.c.status,
                   latest.c.decline_code)
            .select_from(dunning_case_invoices.join(invoices, invoices.c.id == dunning_case_invoices.c.invoice_id)
                         .outerjoin(latest, latest.c.id == latest_id))
            .where(among(conn, dunning_case_invoices.c.case_id, case_ids),
                   invoices.c.status == InvoiceStatus.OPEN.value)
            .order_by(invoices.c.id)):
        found[case_id].append(CaseInvoice(
            invoice_id, number, int(due), currency,
            local_date(attempted_at, timezone_of[case_id]) if attempted_at else None, status in unsettled,
            decline_code if status == AttemptStatus.DECLINED else None, attempt_id))
    return found


def latest_decline(unpaid: list[CaseInvoice]) -> str | None:
    """The decline code of the most recent declined attempt among the invoices: why, in the notice."""
    declined = [invoice for invoice in unpaid if invoice.decline_code]
    return max(declined, key=lambda invoice: invoice.attempt_id or 0).decline_code if declined else None


@dataclass
class Given:
    rows: list[tuple] = field(default_factory=list)  # outbox rows: e-mails and events
    emails: int = 0
    cancelled: int = 0


def give(conn: Connection, app: App, given: list[tuple[NoticeCase, int, str | None]], as_of: datetime) -> Given:
    """Give each (case, step, reason)'s notice now: the account's status and banner are written
    here; the e-mails and events are returned as outbox rows for the caller's bulk insert."""
    result = Given()
    if not given:
        return result
    policy = app.policy
    recipients = notices.billing_recipients(conn, {case.account_id for case, step, _ in given
                                                   if policy.steps[step].email})
    past_due, cancelled = [], []
    for case, step_index, reason in given:
        step = policy.steps[step_index]
        today = local_date(as_of, case.timezone)
        status = AccountStatus.CANCELLED.value if step.cancel else AccountStatus.PAST_DUE.value
        banner = step.banner.value
        cancel_date = cancellation_date(policy, case.day0, step_index, today)
        if step.cancel:
            cancelled.append({"id": case.account_id, "status": status, "banner": banner, "cancelled_at": as_of,
                              "deletion_due_at": local_midnight_utc(deletion_date(policy, today), case.timezone),
                              "updated_at": as_of})
            result.cancelled += 1
        elif (status, banner) != (case.status, case.banner):
            past_due.append({"id": case.account_id, "status": status, "banner": banner, "updated_at": as_of})
        if (status, banner) != (case.status, case.banner):
            result.rows.append((as_of, "account.dunning_state", case.account_id,
                                {"status": status, "banners": banners_seen(banner, status)}, None))
        if step.email:
            result.rows.append(_email(app, policy, case, step_index, reason, cancel_date,
                                      recipients[case.account_id], as_of))
            result.emails += 1
    update_rows(conn, accounts, past_due)
    update_rows(conn, accounts, cancelled)
    return result


def cancellation_date(policy: Policy, day0: date, step_index: int, today: date) -> date | None:
    """The cancellation day a notice of step `step_index` given today announces (the warning's
    own notice moves it when it comes late)."""
    if policy.cancel_index is None:
        return None
    if step_index == policy.cancel_index:
        return today
    warning = policy.warning_index
    return policy.cancellation_date(day0, today if warning is not None and step_index >= warning else None)


def _email(app: App, policy: Policy, case: NoticeCase, step_index: int, reason: str | None,
           cancel_date: date | None, recipients: list[str], as_of: datetime) -> tuple:
    step = policy.steps[step_index]
    unpaid = [notices.Unpaid(invoice.number, invoice.due, invoice.currency) for invoice in case.unpaid]
    values = notices.placeholders(
        policy=policy, locale=case.locale, account=case.name, invoices=unpaid, renewal_date=case.day0,
        cancel_date=cancel_date, deletion_date=deletion_date(policy, cancel_date) if cancel_date else None,
        support_email=app.settings.seller.support_email, reason=reason,
        next_attempt_date=None if step.cancel else policy.next_charge_date(case.day0, step_index))
    row = notices.email_row(policy, step.email, case.locale, case.account_id, recipients, values, as_of,
                            case_id=case.case_id, step=step.name, policy_version=policy.version, reason=reason,
                            invoices=[invoice.number for invoice in case.unpaid],
                            attempts=[invoice.attempt_id for invoice in case.unpaid if invoice.decline_code])
    return (row["created_at"], row["topic"], row["account_id"], row["payload"], None)
