"""The payment method: only the owner changes it (R6.1), and only after the card checks out (R5.1).

Saving a card authorizes one unit of the account's currency, never captured; the card is saved
only if that succeeds (a declined check is e-mailed to the owner), and the authorization is
voided after the policy's delay (R5.2). The
verification row is committed before the gateway is asked, so that no authorization can be left
open without Renewly knowing. A saved card asks the next payment batch to retry every unpaid
invoice of the account (R7.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, select

from renewly.accounts.accounts import _live_account, load_account, require_access, require_owner
from renewly.accounts.rules.members import validate_email
from renewly.adapters.clock import wall_clock
from renewly.adapters.db.tables import card_verifications, cards, gateway_customers, invoices
from renewly.billing.rules.invoices import InvoiceKind, InvoiceStatus
from renewly.outbox import writer
from renewly.outbox.emails import email_row
from renewly.outbox.records import audit
from renewly.outbox.rendering import templates_of
from renewly.payments.retries import card_update_reason, request_retries, retry_requests
from renewly.payments.rules.card_numbers import CardNumberRefused, holds_card_number
from renewly.payments.rules.charges import Outcome, SavedCard, decline_in_words, verification_key
from renewly.ports import Ports
from renewly.shared.errors import BillingError
from renewly.shared.money import minor_unit_exponent


class CardRefused(BillingError):
    code = "card_declined"


@dataclass(frozen=True)
class CardSaved:
    card: SavedCard
    retries_requested: int


def may_change_card(app: Ports, account_id: int, acting_email: str):
    """Refuse anyone but the owner, of a live account whose billing pages they may use; the
    account row otherwise. Asked before a card form tokenizes anything (cli `cards add`)."""
    actor = validate_email(acting_email)
    with app.engine.connect() as conn:
        account = _live_account(conn, account_id)
        require_owner(conn, account_id, acting_email)
        require_access(conn, account_id, actor, app.clock.now(), support_email=app.settings.seller.support_email,
                       billing=True)
    return account


def add_card(app: Ports, account_id: int, *, card_token: str, acting_email: str) -> CardSaved:
    if holds_card_number(card_token):  # R5.4: a number pasted for a token never reaches the gateway
        raise CardNumberRefused()
    now = app.clock.now()
    actor = validate_email(acting_email)
    payments = app.settings.payments
    account = may_change_card(app, account_id, acting_email)
    with app.engine.connect() as conn:
        customer = conn.execute(select(gateway_customers.c.customer)
                                .where(gateway_customers.c.account_id == account_id)).scalar()
    if customer is None:
        customer = app.gateway.ensure_customer(account_id, actor, account.name)
        with app.engine.begin() as conn:
            if conn.execute(select(gateway_customers.c.customer)
                            .where(gateway_customers.c.account_id == account_id)).scalar() is None:
                conn.execute(gateway_customers.insert().values(account_id=account_id, gateway=app.gateway.name,
                                                               customer=customer, created_at=now))
            audit(conn, now, actor, "gateway_customer.created", "account", account_id)
    saved = app.gateway.attach_card(customer, card_token)

    amount = payments.verification_units * 10 ** minor_unit_exponent(account.currency)
    with app.engine.begin() as conn:
        verification_id = conn.execute(card_verifications.insert().values(
            account_id=account_id, card_token=saved.token, amount=amount, currency=account.currency, status="pending",
            created_at=now, void_due_at=now + timedelta(days=app.policy.verification_void_delay_days),
            lease_expires_at=wall_clock() + timedelta(seconds=payments.lease_seconds),
        ).returning(card_verifications.c.id)).scalar_one()
    result = app.gateway.authorize(customer, saved.token, amount, account.currency, verification_key(verification_id))

    with app.engine.begin() as conn:
        if result.outcome != Outcome.SUCCEEDED:
            conn.execute(card_verifications.update().where(card_verifications.c.id == verification_id).values(
                status=result.outcome.value, decline_code=result.decline_code))
            if result.outcome == Outcome.DECLINED:
                # The owner is told by e-mail too: the form they used may be closed by now.
                values = {"account": account.name, "reason": decline_in_words(result.decline_code, account.locale),
                          "support_email": app.settings.seller.support_email}
                writer.write(conn, email_row(templates_of(app), "card_verification_failed", account.locale,
                                             account_id, [actor], values, now, verification_id=verification_id,
                                             reason=result.decline_code))
        else:
            # A zero-amount check holds nothing: there is nothing to void.
            conn.execute(card_verifications.update().where(card_verifications.c.id == verification_id).values(
                status="held" if amount else "voided", authorization_ref=result.reference,
                voided_at=None if amount else now))
            retries = _save_card(app, conn, account_id, saved, actor, now)
    if result.outcome == Outcome.DECLINED:
        raise CardRefused(f"card declined: {decline_in_words(result.decline_code)} ({result.decline_code}); "
                          f"nothing was saved", values={"decline": result.decline_code or ""})
    if result.outcome == Outcome.UNKNOWN:
        raise CardRefused("the card could not be checked (the payment gateway did not answer); nothing was saved, "
                          "try again", code="gateway_unavailable")
    return CardSaved(saved, retries)


def _save_card(app: Ports, conn: Connection, account_id: int, saved: SavedCard, actor: str, now) -> int:
    conn.execute(cards.update().where(cards.c.account_id == account_id, cards.c.status == "active")
                 .values(status="replaced"))
    card_id = conn.execute(cards.insert().values(
        account_id=account_id, token=saved.token, brand=saved.brand, last4=saved.last4, exp_month=saved.exp_month,
        exp_year=saved.exp_year, status="active", added_by=actor, added_at=now,
    ).returning(cards.c.id)).scalar_one()
    unpaid = conn.execute(select(invoices.c.id).where(
        invoices.c.account_id == account_id, invoices.c.status == InvoiceStatus.OPEN.value,
        invoices.c.kind == InvoiceKind.INVOICE.value)).scalars().all()
    # R7.1: the next batch retries every unpaid invoice, whatever the dunning step.
    request_retries(conn, retry_requests(unpaid, card_update_reason(card_id), now))
    if unpaid:
        # A worker on PostgreSQL is told in this transaction: the retry is charged at the next
        # payment tick, and the job exists only if the card does.
        app.follow_ups.work_due(conn, "collect", now)
    audit(conn, now, actor, "card.updated", "account", account_id,
          details={"brand": saved.brand, "last4": saved.last4, "retries_requested": len(unpaid)})
    writer.write(conn, writer.event(now, "payment_method.updated", account_id,
                                    {"brand": saved.brand, "last4": saved.last4}))
    return len(unpaid)


def current_card(app: Ports, account_id: int) -> dict | None:
    with app.engine.connect() as conn:
        load_account(conn, account_id)  # an unknown account is refused as such, not shown as cardless
        row = conn.execute(select(cards).where(cards.c.account_id == account_id, cards.c.status == "active")).first()
    if row is None:
        return None
    return {"brand": row.brand, "last4": row.last4, "exp_month": row.exp_month, "exp_year": row.exp_year,
            "added_by": row.added_by, "added_at": row.added_at}
