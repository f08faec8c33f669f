"""What the answers to charges do to dunning, in the transaction that records them.

Whoever settles attempts (the payment batch, or the janitor for answers that came late) calls
`after_charges`, so that an answer is told the same way whoever got it; payments sit below
dunning and call it through the port they are given (`Ports.settlement`, DunningSettlement
below, wired by renewly.bootstrap), in the same transaction:
- R8.6, R11: a payment that leaves an account's case with nothing unpaid ends it: one
  confirmation e-mail to every billing contact, the account active again, its banners gone, a
  running reactivation ended paid.
- R8: a charging step's notice waits for its charges; once the last of them is answered (and the
  case goes on), its e-mail and banner are given, naming why the charge failed.
- R7.1: when the retries a card update asked for are all answered and one was declined, the
  owner, who saved the card, is told (unless a step's notice told everyone just now).
The accounts are locked first, in id order, as the sweep takes them, so that a sweep and a
payment batch never wait for each other in a circle, and two payment batches settling charges of
one account see each other's answers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, exists, or_, select

from renewly.accounts.rules.members import AccountStatus, Role
from renewly.adapters.db.bulk import among, insert_ignoring_conflicts, update_rows
from renewly.adapters.db.tables import (
    accounts,
    cards,
    dunning_case_invoices,
    dunning_cases,
    invoices,
    members,
    payment_attempts,
    payment_retries,
    reactivations,
)
from renewly.billing.issuing import amount_due
from renewly.billing.rules.invoices import InvoiceKind, InvoiceStatus
from renewly.dunning import notices as dunning_notices
from renewly.dunning.notices import NoticeCase, case_invoices
from renewly.dunning.rules.banners import banners_seen
from renewly.dunning.rules.notices import notice_reason
from renewly.dunning.rules.schedule import IN_DUNNING
from renewly.dunning.rules.sweep import charges_pending
from renewly.outbox import emails as notices
from renewly.outbox import writer
from renewly.outbox.rendering import templates_of
from renewly.outbox.writer import OutboxRow
from renewly.payments.retries import CARD_UPDATE
from renewly.payments.rules.charges import UNSETTLED, AttemptStatus
from renewly.ports import Ports
from renewly.shared.calendar import local_date, local_midnight_utc


class DunningSettlement:
    """`Ports.settlement`: what settled invoices mean for dunning, for payments and billing below."""

    def after_charges(self, conn: Connection, app: Ports, *, account_ids: set[int], paid_invoice_ids: list[int],
                      answered_attempt_ids: list[int], as_of: datetime) -> None:
        after_charges(conn, app, account_ids=account_ids, paid_invoice_ids=paid_invoice_ids,
                      answered_attempt_ids=answered_attempt_ids, as_of=as_of)

    def after_void(self, conn: Connection, app: Ports, invoice_id: int, as_of: datetime) -> None:
        """A credit note voided an open invoice: a case with nothing else unpaid ends here."""
        close_settled_cases(conn, app, conn.execute(
            select(dunning_case_invoices.c.case_id).where(dunning_case_invoices.c.invoice_id == invoice_id)
        ).scalars().all(), as_of)


def unpaid_renewal_invoices():
    """Renewal invoices a case must chase: a payment failed (or none can be attempted: no card),
    nothing is still waiting for an answer, and no case has them yet."""
    declined = exists().where(payment_attempts.c.invoice_id == invoices.c.id,
                              payment_attempts.c.status == AttemptStatus.DECLINED.value)
    unsettled = exists().where(payment_attempts.c.invoice_id == invoices.c.id,
                               payment_attempts.c.status.in_([s.value for s in UNSETTLED]))
    has_card = exists().where(cards.c.account_id == invoices.c.account_id, cards.c.status == "active")
    has_case = exists().where(dunning_case_invoices.c.invoice_id == invoices.c.id)
    return and_(invoices.c.status == InvoiceStatus.OPEN.value, invoices.c.kind == InvoiceKind.INVOICE.value,
                invoices.c.subscription_id.is_not(None), ~has_case, ~unsettled, or_(declined, ~has_card))


def after_charges(conn: Connection, app: Ports, *, account_ids: set[int], paid_invoice_ids: list[int],
                  answered_attempt_ids: list[int], as_of: datetime) -> None:
    """Tell what the answers just recorded mean (the accounts are already locked by the caller)."""
    join_open_cases(conn, account_ids, as_of)
    recovered = recover_cases(conn, app, paid_invoice_ids, as_of)
    told = give_awaited_notices(conn, app, account_ids - recovered, as_of)
    tell_owners_of_declined_card_retries(conn, app, answered_attempt_ids, recovered | told, as_of)


def join_open_cases(conn: Connection, account_ids: set[int], as_of: datetime) -> None:
    """An invoice just declined on an account in dunning joins its open case at once, so that the
    notice the same answers give names it (a case is opened by the sweep, which gives day 0's)."""
    if not account_ids:
        return
    rows = conn.execute(select(invoices.c.id, dunning_cases.c.id.label("case_id"), dunning_cases.c.account_id)
                        .join(dunning_cases, and_(dunning_cases.c.account_id == invoices.c.account_id,
                                                  dunning_cases.c.status == "open"))
                        .where(among(conn, invoices.c.account_id, sorted(account_ids)), unpaid_renewal_invoices(),
                               invoices.c.issued_at <= as_of)).all()
    if not rows:
        return
    # A sweep opening cases at this moment may add the same invoice: the first one in keeps it.
    added = conn.execute(insert_ignoring_conflicts(conn)(dunning_case_invoices)
                         .on_conflict_do_nothing(index_elements=["invoice_id"])
                         .returning(dunning_case_invoices.c.invoice_id, dunning_case_invoices.c.case_id),
                         [{"invoice_id": row.id, "case_id": row.case_id, "added_at": as_of} for row in rows]).all()
    account_of = {row.case_id: row.account_id for row in rows}
    writer.write_many(conn, [writer.event(as_of, "dunning.invoices_joined", account_of[case_id],
                                          {"case_id": case_id, "invoice_ids": [invoice_id]})
                             for invoice_id, case_id in added])


# -- R8.6, R11: recovery ----------------------------------------------------------------------------

def recover_cases(conn: Connection, app: Ports, paid_invoice_ids: list[int], as_of: datetime) -> set[int]:
    """Close the open cases the payments left with nothing unpaid; returns their accounts."""
    if not paid_invoice_ids:
        return set()
    rows = conn.execute(select(dunning_cases.c.id, dunning_cases.c.account_id, dunning_cases.c.day0,
                               accounts.c.name, accounts.c.locale, accounts.c.status)
                        .join(accounts, accounts.c.id == dunning_cases.c.account_id)
                        .where(dunning_cases.c.status == "open", dunning_cases.c.id.in_(
                            select(dunning_case_invoices.c.case_id)
                            .where(among(conn, dunning_case_invoices.c.invoice_id, paid_invoice_ids))))).all()
    left = _cases_with_unpaid_invoices(conn, [row.id for row in rows])
    recovered = [row for row in rows if row.id not in left]
    if not recovered:
        return set()
    case_ids = [row.id for row in recovered]
    paid: dict[int, list[notices.Unpaid]] = defaultdict(list)
    for case_id, number, due, currency in conn.execute(
            select(dunning_case_invoices.c.case_id, invoices.c.number, amount_due(), invoices.c.currency)
            .join(invoices, invoices.c.id == dunning_case_invoices.c.invoice_id)
            .where(among(conn, dunning_case_invoices.c.case_id, case_ids),
                   invoices.c.status == InvoiceStatus.PAID.value).order_by(invoices.c.id)):
        paid[case_id].append(notices.Unpaid(number, int(due), currency))
    recipients = notices.addressees(conn, {row.account_id for row in recovered})
    policy = app.policy
    templates = templates_of(app)
    emails = [notices.email_row(templates, "payment_confirmed", row.locale, row.account_id, recipients[row.account_id],
                                notices.placeholders(policy=policy, locale=row.locale, account=row.name,
                                                     invoices=paid[row.id], renewal_date=row.day0,
                                                     support_email=app.settings.seller.support_email),
                                as_of, case_id=row.id, invoices=[invoice.number for invoice in paid[row.id]])
              for row in recovered]
    events = [writer.event(as_of, "dunning.recovered", row.account_id,
                           {"case_id": row.id, "invoices": [invoice.number for invoice in paid[row.id]],
                            "reactivated": row.status == AccountStatus.CANCELLED}) for row in recovered]
    # R9.3: a cancelled account that paid is active again (_close): the host product opens it again.
    events += [writer.event(as_of, "account.reactivated", row.account_id, {"account_id": row.account_id,
                                                                            "case_id": row.id})
               for row in recovered if row.status == AccountStatus.CANCELLED]
    _close(conn, recovered, "recovered", as_of, events)
    writer.write_many(conn, emails + events)
    return {row.account_id for row in recovered}


def close_settled_cases(conn: Connection, app: Ports, case_ids: Sequence[int], as_of: datetime) -> None:
    """Close cases left with nothing unpaid by something else than a payment (a credit note):
    no confirmation, since nobody paid; a past-due account is active again, a cancelled one stays
    cancelled (only a payment reactivates, R9.3)."""
    if not case_ids:
        return
    rows = conn.execute(select(dunning_cases.c.id, dunning_cases.c.account_id, accounts.c.status)
                        .join(accounts, accounts.c.id == dunning_cases.c.account_id)
                        .where(among(conn, dunning_cases.c.id, case_ids), dunning_cases.c.status == "open")).all()
    left = _cases_with_unpaid_invoices(conn, [row.id for row in rows])
    settled = [row for row in rows if row.id not in left]
    events = [writer.event(as_of, "dunning.closed", row.account_id, {"case_id": row.id, "why": "nothing_left_unpaid"})
              for row in settled]
    _close(conn, [row for row in settled if row.status != AccountStatus.CANCELLED], "recovered", as_of, events)
    written_off = [row.id for row in settled if row.status == AccountStatus.CANCELLED]
    if written_off:
        conn.execute(dunning_cases.update().where(among(conn, dunning_cases.c.id, written_off))
                     .values(status="written_off", closed_at=as_of, next_step_at=None, awaiting_step_name=None))
    writer.write_many(conn, events)


def _close(conn: Connection, rows, status: str, as_of: datetime, events: list[OutboxRow]) -> None:
    """Cases closed, their accounts active with no banner and no cancellation, a running
    reactivation ended paid; an event saying what members now see."""
    if not rows:
        return
    conn.execute(dunning_cases.update().where(among(conn, dunning_cases.c.id, [row.id for row in rows]))
                 .values(status=status, closed_at=as_of, next_step_at=None, awaiting_step_name=None))
    account_ids = sorted({row.account_id for row in rows})
    update_rows(conn, accounts, [{"id": account_id, "status": AccountStatus.ACTIVE.value, "banner": "none",
                                  "cancelled_at": None, "deletion_due_at": None, "updated_at": as_of}
                                 for account_id in account_ids])
    running = conn.execute(select(reactivations.c.id).where(among(conn, reactivations.c.account_id, account_ids),
                                                             reactivations.c.outcome.is_(None))).scalars().all()
    update_rows(conn, reactivations, [{"id": rid, "outcome": "paid", "ended_at": as_of} for rid in running])
    events.extend(writer.event(as_of, "account.dunning_state", account_id,
                               {"status": AccountStatus.ACTIVE.value,
                                "banners": banners_seen("none", AccountStatus.ACTIVE.value)})
                  for account_id in account_ids)


def _cases_with_unpaid_invoices(conn: Connection, case_ids: list[int]) -> set[int]:
    if not case_ids:
        return set()
    return set(conn.execute(select(dunning_case_invoices.c.case_id).distinct()
                            .join(invoices, invoices.c.id == dunning_case_invoices.c.invoice_id)
                            .where(among(conn, dunning_case_invoices.c.case_id, case_ids),
                                   invoices.c.status == InvoiceStatus.OPEN.value)).scalars())


# -- R8: a step's notice after its charges ----------------------------------------------------------

def give_awaited_notices(conn: Connection, app: Ports, account_ids: set[int], as_of: datetime) -> set[int]:
    """The notices whose charges are all answered now; returns the accounts told."""
    if not account_ids:
        return set()
    has_card = exists().where(cards.c.account_id == dunning_cases.c.account_id, cards.c.status == "active")
    rows = conn.execute(select(dunning_cases.c.id, dunning_cases.c.account_id, dunning_cases.c.day0,
                               dunning_cases.c.awaiting_step_name, accounts.c.name, accounts.c.locale,
                               accounts.c.timezone, accounts.c.status, accounts.c.banner, has_card.label("has_card"))
                        .join(accounts, accounts.c.id == dunning_cases.c.account_id)
                        .where(among(conn, dunning_cases.c.account_id, sorted(account_ids)),
                               dunning_cases.c.status == "open", dunning_cases.c.awaiting_step_name.is_not(None))).all()
    if not rows:
        return set()
    unpaid = case_invoices(conn, [row.id for row in rows], {row.id: row.timezone for row in rows})
    # Ready: no charge of the case still to come (asked for and not made, or made and not answered).
    ready = [row for row in rows if not charges_pending(unpaid.get(row.id, ()))]
    if not ready:
        return set()
    policy = app.policy
    # Steps are known by name: the position of the awaited one in the policy in force, if it has it.
    awaited = {name: index for name in {row.awaiting_step_name for row in ready}
               if (index := policy.index_of(name)) is not None}
    # A case that cancelled meanwhile, or with nothing unpaid left, has nothing more to say; nor a
    # step the policy in force no longer has (the operator removed or renamed it since).
    told = [row for row in ready if row.status in IN_DUNNING and unpaid.get(row.id)
            and row.awaiting_step_name in awaited]
    given = dunning_notices.give(conn, app, [
        (NoticeCase(row.id, row.account_id, row.day0, row.name, row.locale, row.timezone, row.status, row.banner,
                    unpaid[row.id]), awaited[row.awaiting_step_name],
         notice_reason(unpaid[row.id], row.has_card)) for row in told], as_of)
    warning, told_ids = policy.warning_index, {row.id for row in told}
    # Cases told alike move alike: one UPDATE for the others, one per cancellation moment.
    rescheduled: dict[datetime, list[int]] = defaultdict(list)
    for row in told:
        if awaited[row.awaiting_step_name] == warning:
            # The warning is given now: the cancellation comes the policy's minimum warning later.
            rescheduled[local_midnight_utc(policy.cancellation_date(row.day0, local_date(as_of, row.timezone)),
                                           row.timezone)].append(row.id)
    plain = [row.id for row in ready if not (row.id in told_ids and awaited[row.awaiting_step_name] == warning)]
    if plain:
        conn.execute(dunning_cases.update().where(among(conn, dunning_cases.c.id, plain))
                     .values(awaiting_step_name=None))
    for next_step_at, case_ids in rescheduled.items():
        conn.execute(dunning_cases.update().where(among(conn, dunning_cases.c.id, case_ids))
                     .values(awaiting_step_name=None, warned_at=as_of, next_step_at=next_step_at))
    writer.write_many(conn, given.rows)
    return {row.account_id for row in told}


# -- R7.1: the owner's card update was declined -----------------------------------------------------

def tell_owners_of_declined_card_retries(conn: Connection, app: Ports, answered_attempt_ids: list[int],
                                         already_told: set[int], as_of: datetime) -> None:
    if not answered_attempt_ids:
        return
    updates = conn.execute(select(payment_retries.c.reason, invoices.c.account_id).distinct()
                           .join(invoices, invoices.c.id == payment_retries.c.invoice_id)
                           .where(among(conn, payment_retries.c.attempt_id, answered_attempt_ids),
                                  payment_retries.c.reason.startswith(CARD_UPDATE))).all()
    updates = [row for row in updates if row.account_id not in already_told]
    if not updates:
        return
    retried = conn.execute(
        select(payment_retries.c.reason, invoices.c.account_id, invoices.c.number, invoices.c.currency,
               amount_due().label("due"), invoices.c.status, payment_retries.c.attempt_id,
               payment_attempts.c.status.label("attempt_status"), payment_attempts.c.decline_code)
        .join(invoices, invoices.c.id == payment_retries.c.invoice_id)
        .outerjoin(payment_attempts, payment_attempts.c.id == payment_retries.c.attempt_id)
        .where(payment_retries.c.reason.in_([row.reason for row in updates])).order_by(invoices.c.id)).all()
    by_update: dict[tuple[str, int], list] = defaultdict(list)
    for row in retried:
        by_update[(row.reason, row.account_id)].append(row)
    declined: dict[tuple[str, int], list] = {}
    for key, rows in by_update.items():
        unpaid = [row for row in rows if row.status == InvoiceStatus.OPEN]
        if any(row.attempt_id is None or row.attempt_status in UNSETTLED for row in unpaid):
            continue  # another of its retries is still to be answered: that answer tells
        refused = [row for row in unpaid if row.attempt_status == AttemptStatus.DECLINED]
        if refused:
            declined[key] = refused
    if not declined:
        return
    account_ids = sorted({account_id for _, account_id in declined})
    owner_of = dict(conn.execute(select(members.c.account_id, members.c.email)
                                 .where(among(conn, members.c.account_id, account_ids),
                                        members.c.role == Role.OWNER.value)).all())
    account_of = {row.id: row for row in conn.execute(
        select(accounts.c.id, accounts.c.name, accounts.c.locale).where(among(conn, accounts.c.id, account_ids)))}
    policy, templates = app.policy, templates_of(app)
    emails = []
    for (_, account_id), refused in sorted(declined.items()):
        account = account_of[account_id]
        unpaid = [notices.Unpaid(row.number, int(row.due), row.currency) for row in refused]
        values = notices.placeholders(policy=policy, locale=account.locale, account=account.name, invoices=unpaid,
                                      renewal_date=None, support_email=app.settings.seller.support_email,
                                      reason=refused[-1].decline_code)
        emails.append(notices.email_row(templates, "card_retry_declined", account.locale, account_id,
                                        [owner_of[account_id]], values, as_of,
                                        reason=refused[-1].decline_code, invoices=[row.number for row in refused]))
    writer.write_many(conn, emails)
