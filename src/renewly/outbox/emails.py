"""E-mails' texts and recipients: rendered from the policy's templates in the account's language,
to every billing contact (R4.3); built into outbox rows by `outbox.writer.email`, written in the
transaction of the change they report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from sqlalchemy import Connection, literal, select, union_all

from renewly.adapters.db.bulk import among
from renewly.adapters.db.tables import billing_contacts, members
from renewly.billing.rules.invoices import format_day
from renewly.config.texts import text
from renewly.dunning.rules.schedule import Policy
from renewly.outbox import writer
from renewly.outbox.writer import OutboxRow
from renewly.payments.rules.charges import decline_in_words
from renewly.shared.money import Money


def billing_recipients(conn: Connection, account_ids: Iterable[int]) -> dict[int, list[str]]:
    """The owner, then the other billing contacts, for each account, in one query."""
    ids = list(set(account_ids))
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return found
    owners = select(members.c.account_id, members.c.email, literal(0).label("rank"), literal(0).label("id")).where(
        among(conn, members.c.account_id, ids), members.c.role == "owner")
    contacts = select(billing_contacts.c.account_id, billing_contacts.c.email, literal(1), billing_contacts.c.id).where(
        among(conn, billing_contacts.c.account_id, ids), billing_contacts.c.status == "active")
    for account_id, email, _, _ in conn.execute(union_all(owners, contacts).order_by("account_id", "rank", "id")):
        if email not in found[account_id]:
            found[account_id].append(email)
    return found


@dataclass(frozen=True, slots=True)
class Unpaid:
    """An invoice a dunning text names: its number and what is still due on it."""

    number: str
    due: int
    currency: str


def placeholders(*, policy: Policy, locale: str, account: str, invoices: Sequence[Unpaid], renewal_date: date | None,
                 cancel_date: date | None = None, deletion_date: date | None = None, support_email: str = "",
                 reason: str | None = None, next_attempt_date: date | None = None,
                 reactivation_end_date: date | None = None) -> dict[str, str]:
    """The values of every placeholder a policy text may use, in the reader's language; a dunning
    text names every unpaid invoice of the case and their total."""
    return {**date_placeholders(locale, renewal_date=renewal_date, cancel_date=cancel_date,
                                deletion_date=deletion_date, next_attempt_date=next_attempt_date,
                                reactivation_end_date=reactivation_end_date),
            **case_placeholders(locale, account=account, support_email=support_email, invoices=invoices,
                                reason=reason)}


def date_placeholders(locale: str, *, renewal_date: date | None = None, cancel_date: date | None = None,
                      deletion_date: date | None = None, next_attempt_date: date | None = None,
                      reactivation_end_date: date | None = None) -> dict[str, str]:
    def day(value: date | None) -> str:
        return format_day(value, locale) if value else ""
    return {"renewal_date": day(renewal_date), "cancel_date": day(cancel_date), "deletion_date": day(deletion_date),
            "next_attempt_date": day(next_attempt_date), "reactivation_end_date": day(reactivation_end_date)}


def case_placeholders(locale: str, *, account: str, support_email: str, invoices: Sequence, reason: str | None
                      ) -> dict[str, str]:
    """What differs from one account to the next: its name, its invoices and total, the reason."""
    return {"account": account, "invoice": ", ".join(invoice.number for invoice in invoices),
            "amount": amount_text(invoices, locale), "support_email": support_email,
            "reason": decline_in_words(reason, locale) if reason else ""}


def amount_text(invoices: Sequence, locale: str) -> str:
    """The total due (anything with a `due` and a `currency`), per currency: an account bills in
    one, so in practice one amount."""
    if len(invoices) == 1:
        return money_text(invoices[0].due, invoices[0].currency, locale)
    totals: dict[str, int] = {}
    for invoice in invoices:
        totals[invoice.currency] = totals.get(invoice.currency, 0) + invoice.due
    return " + ".join(money_text(amount, currency, locale) for currency, amount in sorted(totals.items()))


@lru_cache(maxsize=4096)
def money_text(amount: int, currency: str, locale: str) -> str:
    # Cached: Babel takes a tenth of a millisecond, and a mass-decline day bills a few prices a million times.
    return Money(amount, currency).format(locale)


def email_row(policy: Policy, template: str, locale: str, account_id: int, recipients: list[str],
              values: Mapping[str, str], at: datetime, **context) -> OutboxRow:
    """The e-mail of one of the policy's templates, its placeholders filled with `values`."""
    text = policy.templates[(template, locale)]
    return writer.email(at, account_id, kind=template, locale=locale, recipients=recipients,
                        subject=text.subject.format(**values), body=text.body.format(**values), about=context)


def invoice_email(invoice, recipients: list[str], at: datetime, *, reason: str) -> OutboxRow:
    """An invoice e-mail, from the invoice as issued (its frozen seller, buyer and lines)."""
    locale = invoice.locale
    values = {"number": invoice.number, "seller": invoice.seller["name"], "buyer": invoice.buyer["name"],
              "issue_date": format_day(invoice.issue_date, locale),
              "total": Money(invoice.total, invoice.currency).format(locale),
              "why": text("invoice_email.resent", locale, reason=reason)}
    return writer.email(at, invoice.account_id, kind="invoice", locale=locale, recipients=recipients,
                        subject=text("invoice_email.subject", locale, **values),
                        body=text("invoice_email.body", locale, **values), about={"invoice": invoice.number})
