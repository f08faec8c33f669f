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

from sqlalchemy import Connection, exists, func, select

from renewly.adapters.db.bulk import among, update_rows
from renewly.adapters.db.tables import accounts, dunning_case_invoices, invoices, payment_attempts, payment_retries
from renewly.billing.issuing import amount_due
from renewly.billing.rules.invoices import InvoiceStatus
from renewly.dunning.rules.banners import banners_seen
from renewly.dunning.rules.notices import CaseInvoice, account_after_notice, cancellation_date
from renewly.dunning.rules.schedule import Policy
from renewly.outbox import emails as notices
from renewly.outbox import writer
from renewly.outbox.rendering import MailTemplates, templates_of
from renewly.outbox.writer import OutboxRow
from renewly.payments.rules.charges import AttemptStatus
from renewly.ports import Ports
from renewly.retention.rules.deadlines import deletion_date
from renewly.shared.calendar import local_date, local_midnight_utc


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


# The terms of `case_invoices`' query, built once: an alias's columns cost milliseconds to build,
# paid by every banner a host product asks for (the API's member banner) and every sweep slice.
_latest = payment_attempts.alias("latest")
_CASE_INVOICE_TERMS = (
    _latest,
    select(func.max(payment_attempts.c.id)).where(payment_attempts.c.invoice_id == invoices.c.id).scalar_subquery(),
    exists().where(payment_retries.c.invoice_id == invoices.c.id, payment_retries.c.attempt_id.is_(None)),
    amount_due().label("due"),
)


def case_invoices(conn: Connection, case_ids: list[int], timezone_of: dict[int, str]) -> dict[int, list[CaseInvoice]]:
    """The unpaid invoices of each case, with what their latest charge attempt says, and whether
    a charge is still asked for."""
    if not case_ids:
        return {}
    latest, latest_id, retry_asked, amount = _CASE_INVOICE_TERMS
    found: dict[int, list[CaseInvoice]] = defaultdict(list)
    # Plain strings: an enum member looked up in the loop costs more than the rest of a row.
    unsettled = (AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value)
    declined = AttemptStatus.DECLINED.value
    days: dict[tuple, date] = {}  # the attempts of one batch share their instant: one conversion each
    for case_id, invoice_id, number, currency, due, attempt_id, attempted_at, status, decline_code, asked in (
            conn.execute(
                select(dunning_case_invoices.c.case_id, invoices.c.id, invoices.c.number, invoices.c.currency,
                       amount, latest.c.id, latest.c.created_at, latest.c.status,
                       latest.c.decline_code, retry_asked.label("retry_asked"))
                .select_from(dunning_case_invoices.join(invoices, invoices.c.id == dunning_case_invoices.c.invoice_id)
                             .outerjoin(latest, latest.c.id == latest_id))
                .where(among(conn, dunning_case_invoices.c.case_id, case_ids),
                       invoices.c.status == InvoiceStatus.OPEN.value)
                .order_by(invoices.c.id))):
        day = None
        if attempted_at is not None:
            key = (attempted_at, timezone_of[case_id])
            day = days.get(key)
            if day is None:
                day = days[key] = local_date(attempted_at, key[1])
        found[case_id].append(CaseInvoice(invoice_id, number, int(due), currency, day, status in unsettled,
                                          decline_code if status == declined else None, attempt_id,
                                          bool(asked)))
    return found


@dataclass
class Given:
    rows: list[OutboxRow] = field(default_factory=list)  # e-mails and events, for `writer.write_many`
    emails: int = 0
    cancelled: int = 0


def give(conn: Connection, app: Ports, given: list[tuple[NoticeCase, int, str | None]], as_of: datetime) -> Given:
    """Give each (case, step, reason)'s notice now: the account's status and banner are written
    here; the e-mails and events are returned as outbox rows for the caller's bulk insert."""
    result = Given()
    if not given:
        return result
    policy = app.policy
    recipients = notices.addressees(conn, {case.account_id for case, step, _ in given if policy.steps[step].email})
    texts = _DateTexts(policy, as_of)
    templates = templates_of(app)
    support_email = app.settings.seller.support_email
    past_due, cancelled = [], []
    for case, step_index, reason in given:
        step = policy.steps[step_index]
        after = account_after_notice(step, case.status, case.banner, texts.today(case.timezone),
                                     policy.deletion_days)
        status, banner = after.status, after.banner
        if after.cancelled:
            if after.deletion_on is None:
                raise ValueError(f"account {case.account_id} cancelled by step {step.name} without a deletion day")
            deletion_due = local_midnight_utc(after.deletion_on, case.timezone)
            cancelled.append({"id": case.account_id, "status": status, "banner": banner, "cancelled_at": as_of,
                              "deletion_due_at": deletion_due, "updated_at": as_of})
            result.cancelled += 1
        elif after.changed:
            past_due.append({"id": case.account_id, "status": status, "banner": banner, "updated_at": as_of})
        if after.changed:
            result.rows.append(writer.event(as_of, "account.dunning_state", case.account_id,
                                            {"status": status, "banners": banners_seen(banner, status)}))
        if after.cancelled:
            # R9.1, R10.3: the host product closes the account's access, and knows when its data goes.
            result.rows.append(writer.event(as_of, "account.cancelled", case.account_id, {
                "account_id": case.account_id, "case_id": case.case_id, "deletion_due_at": deletion_due.isoformat()}))
        if step.email:
            result.rows.append(_email(policy, templates, case, step_index, reason, texts,
                                      recipients[case.account_id], support_email, as_of))
            result.emails += 1
    update_rows(conn, accounts, past_due)
    update_rows(conn, accounts, cancelled)
    return result


class _DateTexts:
    """The dates a notice names, in words of its language, computed once per slice for the cases
    that share a renewal date, a step, a day and a language (a mass-decline day's thousands)."""

    def __init__(self, policy: Policy, as_of: datetime) -> None:
        self.policy, self.as_of = policy, as_of
        self._today: dict[str, date] = {}
        self._texts: dict[tuple, dict[str, str]] = {}

    def today(self, timezone: str) -> date:
        found = self._today.get(timezone)
        if found is None:
            found = self._today[timezone] = local_date(self.as_of, timezone)
        return found

    def of(self, day0: date, step_index: int, timezone: str, locale: str) -> dict[str, str]:
        today = self.today(timezone)
        key = (day0, step_index, today, locale)
        found = self._texts.get(key)
        if found is None:
            policy = self.policy
            cancel_date = cancellation_date(policy, day0, step_index, today)
            found = self._texts[key] = notices.date_placeholders(
                locale, renewal_date=day0, cancel_date=cancel_date,
                deletion_date=deletion_date(cancel_date, policy.deletion_days) if cancel_date else None,
                next_attempt_date=None if policy.steps[step_index].cancel else policy.next_charge_date(day0,
                                                                                                        step_index))
        return found


def _email(policy: Policy, templates: MailTemplates, case: NoticeCase, step_index: int, reason: str | None,
           texts: _DateTexts, recipients: notices.Addressees, support_email: str, as_of: datetime) -> OutboxRow:
    step = policy.steps[step_index]
    if step.email is None:
        raise ValueError(f"step {step.name} of policy {policy.version} sends no e-mail")
    unpaid = case.unpaid
    values = {**texts.of(case.day0, step_index, case.timezone, case.locale),
              **notices.case_placeholders(case.locale, account=case.name, support_email=support_email,
                                          invoices=unpaid, reason=reason)}
    return notices.email_row(templates, step.email, case.locale, case.account_id, recipients, values, as_of,
                             case_id=case.case_id, step=step.name, policy_version=policy.version, reason=reason,
                             invoices=[invoice.number for invoice in unpaid],
                             attempts=[invoice.attempt_id for invoice in unpaid if invoice.decline_code])
