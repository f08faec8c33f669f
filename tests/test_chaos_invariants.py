"""bench/chaos.py's checks see what they count: a checker that always says 0 would prove nothing.

A paid invoice and a declined one (its dunning case open, day 0's step taken) check clean; then
each count is made to move by the damage it is about, done by hand in the tables.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from renewly.adapters.db.tables import invoice_series, outbox, payment_attempts
from renewly.adapters.gateways.simulated import sim_operations
from renewly.scheduler import advance
from tests.builders import subscribed, team_plan
from tests.payment_builders import CHARGES_DECLINED

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from chaos_invariants import check  # noqa: E402


def counts(app):
    return check(app.engine, app.gateway.ledger()).as_dict()


def broken(app) -> dict[str, int]:
    return check(app.engine, app.gateway.ledger()).broken()


def test_the_chaos_checks_count_each_damage_they_are_about(app):
    plan = team_plan(app)
    subscribed(app, plan=plan, owner="paid@acme.test")
    subscribed(app, plan=plan, owner="declined@acme.test", card=CHARGES_DECLINED)
    advance(app, timedelta(hours=2))  # charged: one paid, one declined and its case opened
    clean = counts(app)
    assert (clean["invoices"], clean["charges"]) == (2, 1)
    assert broken(app) == {}

    ledger = app.gateway._engine  # the simulator's own tables: a file of their own on SQLite
    with ledger.begin() as conn:  # the gateway took money nobody recorded
        conn.execute(insert(sim_operations).values(
            id="ch_sim_stray", idempotency_key="stray-key", kind="charge", customer="cus_x", card="pm_x",
            amount=100, currency="USD", outcome="succeeded", at=app.clock.now()))
    assert broken(app) == {"unrecorded_charges": 1}

    with app.engine.begin() as conn:  # and a second success recorded on the paid invoice
        paid = conn.execute(select(payment_attempts).where(payment_attempts.c.status == "succeeded")).one()
        conn.execute(insert(payment_attempts).values(
            invoice_id=paid.invoice_id, account_id=paid.account_id, number=2, idempotency_key=paid.idempotency_key
            + "-again", card_id=paid.card_id, amount=100, currency=paid.currency, status="succeeded",
            reason="test", created_at=paid.created_at, settled_at=paid.created_at,
            lease_expires_at=paid.lease_expires_at))
    with ledger.begin() as conn:
        conn.execute(update(sim_operations).where(sim_operations.c.id == "ch_sim_stray")
                     .values(idempotency_key=paid.idempotency_key + "-again"))
    assert broken(app) == {"double_charges": 1, "overpaid": 1, "lost_emails": 1}  # its event missing

    with app.engine.begin() as conn:  # an event written twice; a number skipped
        event = conn.execute(select(outbox).where(outbox.c.topic == "payment.declined")).one()
        conn.execute(insert(outbox).values(created_at=event.created_at, topic=event.topic,
                                           account_id=event.account_id, payload=event.payload))
        conn.execute(update(invoice_series).values(next_sequence=invoice_series.c.next_sequence + 1))
    assert broken(app) == {"double_charges": 1, "overpaid": 1, "lost_emails": 1, "duplicate_events": 1,
                           "gaps": 1}

    with app.engine.begin() as conn:  # day 0's e-mail lost
        conn.execute(delete(outbox).where(outbox.c.topic == "email"))
    assert broken(app)["lost_emails"] == 2


def test_the_chaos_checks_count_card_checks_held_past_their_void_delay(app):
    plan = team_plan(app)
    subscribed(app, plan=plan, owner="one@acme.test")
    subscribed(app, plan=plan, owner="two@acme.test")
    held = app.gateway.held_authorizations()
    assert len(held) == 2  # each card check holds a unit until its void (R5.2)

    def held_past_due(now):
        return check(app.engine, app.gateway.ledger(), held=held, now=now).held_authorizations

    assert held_past_due(app.clock.now()) == 0
    assert held_past_due(app.clock.now() + timedelta(days=4)) == 2  # the void delay is 3 days
