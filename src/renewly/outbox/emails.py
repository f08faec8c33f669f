"""E-mails' values and recipients: the values their templates name, in the account's language
(dates and amounts formatted by Babel), rendered by `outbox.rendering` to every billing contact
(R4.3); built into outbox rows by `outbox.writer.email`, written in the transaction of the
change they report."""

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
from renewly.dunning.rules.schedule import Policy
from renewly.outbox import writer
from renewly.outbox.rendering import MailTemplates
from renewly.outbox.writer import OutboxRow
from renewly.payments.rules.charges import decline_in_words
from renewly.shared.money import Money


@dataclass(frozen=True, slots=True)
class Addressees:
    """An account's billing recipients: the owner first, then the active contacts (`emails`);
    `contacts`: those who are not the owner, with their row's id (their removal links, R4.2)."""

    emails: list[str]
    contacts: dict[str, int]


@dataclass(frozen=True, slots=True)
class InvoiceMail:
    """What invoices issued in a batch need to be e-mailed (billing.issuing.store_documents):
    the templates, the seller's support address, each account's billing recipients."""

    templates: MailTemplates
    support_email: str
    to: Mapping[int, Addressees]


def addressees(conn: Connection, account_ids: Iterable[int]) -> dict[int, Addressees]:
    """Every billing recipient of each account (R4.3), in one query."""
    ids = list(set(account_ids))
    found: dict[int, Addressees] = defaultdict(lambda: Addressees([], {}))
    if not ids:
        return found
    owners = select(members.c.account_id, members.c.email, literal(0).label("rank"), literal(0).label("id")).where(
        among(conn, members.c.account_id, ids), members.c.role == "owner")
    contacts = select(billing_contacts.c.account_id, billing_contacts.c.email, literal(1), billing_contacts.c.id).where(
        among(conn, billing_contacts.c.account_id, ids), billing_contacts.c.status == "active")
    for account_id, email, rank, contact_id in conn.execute(
            union_all(owners, contacts).order_by("account_id", "rank", "id")):
        them = found[account_id]
        if email not in them.emails:
            them.emails.append(email)
            if rank:
                them.contacts[email] = contact_id
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
    """The values a dunning e-mail or banner may name (rendering.DUNNING_VALUES), in the reader's
    language; a dunning text names every unpaid invoice of the case and their total."""
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


def email_row(templates: MailTemplates, kind: str, locale: str, account_id: int, recipients: list[str] | Addressees,
              values: Mapping[str, str], at: datetime, *, attachments: Sequence[Mapping[str, object]] = (),
              **context) -> OutboxRow:
    """The e-mail `kind` rendered now with `values`, what it is about in `context`. To
    `Addressees`, each contact who is not the owner gets a message of its own at delivery, ending
    with the removal footer rendered here (its link, per recipient, filled in then: R4.2)."""
    rendered = templates.email(kind, locale, values)
    emails, contacts = (recipients.emails, recipients.contacts) if isinstance(recipients, Addressees) else (
        recipients, None)
    return writer.email(at, account_id, kind=kind, locale=locale, recipients=emails, subject=rendered.subject,
                        body=rendered.text, html=rendered.html, about=context, contacts=contacts,
                        removal_footer=templates.removal_footer(locale)._asdict() if contacts else None,
                        attachments=attachments)


def invoice_email(templates: MailTemplates, *, invoice_id: int, number: str, account_id: int, locale: str,
                  seller: str, buyer: str, issue_date: date, total: int, currency: str, to: Addressees,
                  at: datetime, support_email: str, resent_because: str | None = None) -> OutboxRow:
    """An invoice's e-mail to every billing recipient (R4.3), its PDF attached by reference
    (rendered and stored at first need: billing.documents), from the invoice as issued: at issue,
    or resent by support (R2.3) with the reason it was asked for (`reason` of the templates,
    empty at issue)."""
    values = {"number": number, "seller": seller, "buyer": buyer, "issue_date": _day_text(issue_date, locale),
              "total": money_text(total, currency, locale), "reason": resent_because or "",
              "support_email": support_email}
    return email_row(templates, "invoice", locale, account_id, to, values, at,
                     attachments=[{"invoice_id": invoice_id, "filename": templates.attachment_name(locale, number)}],
                     invoice=number)


@lru_cache(maxsize=1024)
def _day_text(day: date, locale: str) -> str:
    # Cached: a renewal slice's invoices share their issue date.
    return format_day(day, locale)
