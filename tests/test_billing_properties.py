"""Issue 2's property: whatever customers and the clock do, the books stay legal (R2.1, R2.4, R3.1).

For random sequences of renewals, seat changes, address changes, credit notes and clock jumps
(with or without the batches), run through the real services on a fresh database, after every
step: invoice numbers stay unique and gapless in each series, each (subscription, period) is
invoiced once and the periods follow each other, total = lines + tax, and no issued invoice
ever changes.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from renewly.accounts.accounts import create_account, describe_account, update_buyer_address
from renewly.adapters.db.tables import accounts, invoice_lines, invoice_series, invoices, plans, subscriptions
from renewly.billing.invoices import issue_credit_note
from renewly.billing.plans import create_plan
from renewly.billing.renewals import renew_due
from renewly.billing.subscriptions import change_seats, create_subscription
from renewly.scheduler import advance
from renewly.shared.errors import InvalidInput, NotAllowed
from tests.builders import GOOD_CARD, OPERATOR, with_card

UTC = UTC
# Plain days, the eve of both spring DST changes, both autumn ones, and a year end (a new series).
STARTS = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 10, 23, tzinfo=UTC),
          datetime(2026, 12, 27, tzinfo=UTC))
ZONES = ("Europe/Paris", "America/Los_Angeles", "Pacific/Auckland", "UTC")
# The default rate table's 20 %, 25.5 % and 8.1 %, and no tax: the odd rates need rounding.
TAX_RATES = {"FR": Decimal("20"), "FI": Decimal("25.5"), "CH": Decimal("8.1"), "US": Decimal("0")}
PLANS = {"monthly": ("month", 1999), "yearly": ("year", 19999)}
# What may change on an issued document: its status and when that changed. Nothing else, ever.
MUTABLE = {"status", "status_changed_at"}
# A customer: time zone, country, plan, anchor day (28th to 31st), start month from today, seats,
# and a card (or none: its invoices go unpaid, dunning cancels the account, retention deletes it).
CUSTOMERS = st.tuples(st.sampled_from(ZONES), st.sampled_from(sorted(TAX_RATES)), st.sampled_from(sorted(PLANS)),
                      st.integers(28, 31), st.integers(-2, 1), st.integers(1, 20),
                      st.sampled_from([GOOD_CARD, GOOD_CARD, None]))


def month_end_anchor(today: date, months_from_now: int, day: int) -> date:
    """The `day` (28th to 31st, clamped) of the month `months_from_now` from `today`."""
    index = today.month - 1 + months_from_now
    year, month = today.year + index // 12, index % 12 + 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def round_half_up(value: Fraction) -> int:
    """Commercial rounding of a fraction of a minor unit: halves away from zero."""
    whole = math.floor(abs(value) + Fraction(1, 2))
    return whole if value >= 0 else -whole


def months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


class Books:
    """Everything issued so far, read in one go: documents, their lines, the series counters."""

    def __init__(self, app) -> None:
        with app.engine.connect() as conn:
            self.documents = [row._asdict() for row in conn.execute(select(invoices).order_by(invoices.c.id))]
            lines = conn.execute(select(invoice_lines).order_by(invoice_lines.c.invoice_id,
                                                                invoice_lines.c.position)).all()
            self.counters = dict(conn.execute(select(invoice_series.c.series, invoice_series.c.next_sequence)).all())
            self.subscriptions = conn.execute(
                select(subscriptions, accounts.c.timezone, accounts.c.status.label("account_status"), plans.c.interval)
                .join(accounts, accounts.c.id == subscriptions.c.account_id)
                .join(plans, plans.c.id == subscriptions.c.plan_id)).all()
        self.lines_of: dict[int, list[dict]] = {}
        for line in lines:
            self.lines_of.setdefault(line.invoice_id, []).append(line._asdict())

    def content(self, document: dict) -> tuple:
        """All that an issued document says: every column but its status, and every line."""
        own = tuple(sorted((key, value) for key, value in document.items() if key not in MUTABLE))
        return own, tuple(tuple(sorted(line.items())) for line in self.lines_of.get(document["id"], []))

    def invoices_only(self) -> list[dict]:
        return [d for d in self.documents if d["kind"] == "invoice"]

    def subscription(self, subscription_id: int):
        return next(row for row in self.subscriptions if row.id == subscription_id)

    def credited(self, invoice_id: int) -> int:
        return sum(d["subtotal"] for d in self.documents if d["credited_invoice_id"] == invoice_id)


class BillingBooks(RuleBasedStateMachine):
    customers = Bundle("customers")  # (account id, subscription id)

    def __init__(self, databases, kind: str) -> None:
        super().__init__()
        self.databases, self.kind = databases, kind
        self.app = None
        self.seen: dict[int, tuple] = {}  # document id -> its content when first seen
        self.addresses: dict[int, dict] = {}  # account id -> the buyer address in force now
        self.owners: dict[int, str] = {}
        self.seats: dict[int, int] = {}
        self.caught_up = True  # no clock move since the batches last ran
        self.books: Books | None = None

    @initialize(target=customers, start=st.sampled_from(STARTS), first=st.lists(CUSTOMERS, min_size=1, max_size=3))
    def open_the_books(self, start: datetime, first: list[tuple]):
        self.app = self.databases.fresh_app(self.kind, start=start)
        for code, (interval, price) in PLANS.items():
            create_plan(self.app, code=code, name=code.title(), interval=interval, price=price, currency="USD",
                        actor=OPERATOR)
        return multiple(*(self.subscribe(customer) for customer in first))

    def teardown(self) -> None:
        if self.app is not None:
            self.app.engine.dispose()  # a PostgreSQL server has a hundred connections, not one per example

    # -- what customers, operators and time do ----------------------------------------------------

    @rule(target=customers, customer=CUSTOMERS)
    def subscribe(self, customer: tuple) -> tuple[int, int]:
        zone, country, plan, day, months_from_now, seats, card = customer
        number = len(self.addresses) + 1
        owner = f"owner{number}@example.test"
        account_id = create_account(self.app, name=f"Customer {number}", owner_email=owner, currency="USD",
                                    country=country, timezone=zone, actor=OPERATOR)
        self.owners[account_id] = owner
        if card:
            with_card(self.app, account_id, card, owner=owner)
        today = self.app.clock.now().astimezone(ZoneInfo(zone)).date()
        start = month_end_anchor(today, months_from_now, day)
        try:
            subscription_id = create_subscription(self.app, account_id, plan_code=plan, seats=seats, start=start,
                                                  actor=OPERATOR)
        except InvalidInput as refused:  # more than one period ago: only when the operator says so
            assert refused.code == "start_in_the_past"
            subscription_id = create_subscription(self.app, account_id, plan_code=plan, seats=seats, start=start,
                                                  actor=OPERATOR, backdate=True)
        self.addresses[account_id] = describe_account(self.app, account_id)["buyer"]
        self.seats[subscription_id] = seats
        return account_id, subscription_id

    @rule(customer=customers, seats=st.integers(1, 20))
    def change_seats(self, customer, seats):
        _, subscription_id = customer
        subscription = self.books.subscription(subscription_id)
        if subscription.status != "active" or subscription.account_status == "deleted":
            with pytest.raises(NotAllowed):
                change_seats(self.app, subscription_id, seats=seats, actor=OPERATOR)
            return
        if seats == self.seats[subscription_id]:
            with pytest.raises(InvalidInput):
                change_seats(self.app, subscription_id, seats=seats, actor=OPERATOR)
            return
        change_seats(self.app, subscription_id, seats=seats, actor=OPERATOR)
        self.seats[subscription_id] = seats

    @rule(customer=customers, country=st.sampled_from(sorted(TAX_RATES)), city=st.sampled_from(("Lyon", "Oslo")))
    def move_buyer(self, customer, country, city):
        account_id, subscription_id = customer
        # R10.1: a deleted account has nothing left to edit; R9.1: a cancelled one's owner is refused
        # the billing pages (no reactivation in this model).
        if self.books.subscription(subscription_id).account_status in ("deleted", "cancelled"):
            with pytest.raises(NotAllowed):
                update_buyer_address(self.app, account_id, changes={"country": country},
                                     acting_email=self.owners[account_id], actor=OPERATOR)
            return
        self.addresses[account_id] = update_buyer_address(
            self.app, account_id, changes={"country": country, "city": city, "line1": f"{len(self.seen)} Main St"},
            acting_email=self.owners[account_id], actor=OPERATOR)

    @rule(hours=st.one_of(st.integers(1, 48), st.integers(2, 100).map(lambda days: 24 * days)),
          run_batches=st.booleans())
    def time_passes(self, hours, run_batches):
        advance(self.app, timedelta(hours=hours), run_batches=run_batches)
        self.caught_up = run_batches

    @rule()
    def renewal_batch_runs_now(self):
        renew_due(self.app, self.app.clock.now())
        self.caught_up = True

    @precondition(lambda self: self.books is not None and self.books.invoices_only())
    @rule(pick=st.integers(0, 10**6), amount=st.one_of(st.none(), st.integers(1, 30000)))
    def credit(self, pick, amount):
        candidates = self.books.invoices_only()
        invoice = candidates[pick % len(candidates)]
        creditable = invoice["subtotal"] - self.books.credited(invoice["id"])
        asked = creditable if amount is None else amount
        if 0 < asked <= creditable:
            issue_credit_note(self.app, invoice["number"], reason="goodwill", amount=amount, actor=OPERATOR)
        else:
            with pytest.raises(InvalidInput):
                issue_credit_note(self.app, invoice["number"], reason="goodwill", amount=amount, actor=OPERATOR)

    # -- what must hold after every step ----------------------------------------------------------

    @invariant()
    def the_books_are_legal(self):
        if self.app is None:
            return
        self.books = books = Books(self.app)
        self.check_numbers(books)
        self.check_amounts(books)
        self.check_nothing_issued_changed(books)
        self.check_periods(books)

    def check_numbers(self, books: Books) -> None:
        """R2.1: numbers per series are 1..n, unique, in issue order; the counter lost none."""
        by_series: dict[str, list[dict]] = {}
        for document in books.documents:
            by_series.setdefault(document["series"], []).append(document)
        assert set(books.counters) == set(by_series)
        for series, documents in by_series.items():
            documents.sort(key=lambda d: d["sequence"])
            assert [d["sequence"] for d in documents] == list(range(1, len(documents) + 1)), series
            assert books.counters[series] == len(documents) + 1, series
            for document in documents:
                year = str(document["issue_date"].year)
                assert document["series"] == (year if document["kind"] == "invoice" else f"CN-{year}")
                assert document["number"] == f"{series}-{document['sequence']:06d}"
            issued = [(d["issued_at"], d["issue_date"]) for d in documents]
            assert issued == sorted(issued), f"series {series} is not in issue order"
        assert len({d["number"] for d in books.documents}) == len(books.documents)

    def check_amounts(self, books: Books) -> None:
        """total = lines + tax, tax = the buyer country's rate on the subtotal, rounded half up."""
        for document in books.documents:
            lines = books.lines_of[document["id"]]
            assert all(line["amount"] == line["quantity"] * line["unit_amount"] for line in lines)
            assert document["subtotal"] == sum(line["amount"] for line in lines) >= 0, document["number"]
            rate = Decimal(document["tax_rate"])
            assert rate == TAX_RATES[document["buyer"]["country"]], document["number"]
            assert document["tax"] == round_half_up(Fraction(document["subtotal"]) * Fraction(rate) / 100)
            assert document["total"] == document["subtotal"] + document["tax"]
        for invoice in books.invoices_only():
            assert books.credited(invoice["id"]) <= invoice["subtotal"], f"{invoice['number']} credited twice"

    def check_nothing_issued_changed(self, books: Books) -> None:
        """R2.4: what an issued document says is the same now as when it was first seen. R3.1: a new
        invoice carries the buyer address in force when it was issued; a credit note, its invoice's."""
        by_id = {d["id"]: d for d in books.documents}
        for document in books.documents:
            content = books.content(document)
            if document["id"] in self.seen:
                assert content == self.seen[document["id"]], f"issued {document['number']} changed"
                continue
            self.seen[document["id"]] = content
            if document["kind"] == "invoice":
                assert document["buyer"] == self.addresses[document["account_id"]], document["number"]
                assert document["seller"] == self.app.seller, document["number"]
            else:
                credited = by_id[document["credited_invoice_id"]]
                assert (document["buyer"], document["seller"]) == (credited["buyer"], credited["seller"])
        assert set(self.seen) == set(by_id), "an issued document disappeared"

    def check_periods(self, books: Books) -> None:
        """One invoice per (subscription, period), the periods contiguous from the anchor, each
        invoiced no earlier than its local midnight; after the batches ran, none left behind."""
        now = self.app.clock.now()
        invoiced: dict[int, list[dict]] = {}
        for invoice in books.invoices_only():
            invoiced.setdefault(invoice["subscription_id"], []).append(invoice)
        for subscription in books.subscriptions:
            periods = sorted(invoiced.pop(subscription.id, []), key=lambda i: i["period_start"])
            starts = [p["period_start"] for p in periods]
            assert len(set(starts)) == len(starts), f"subscription {subscription.id} invoiced twice for a period"
            step = 1 if subscription.interval == "month" else 12
            anchor = subscription.anchor_date
            covered = 0  # periods invoiced so far; a backdated subscription's first invoice covers several
            for period in periods:
                start, end = period["period_start"], period["period_end"]
                span = months_between(start, end)
                assert months_between(anchor, start) == covered * step and span % step == 0 and span >= step
                assert span == step or covered == 0, "only a backdated start's first invoice catches up"
                covered += span // step
                for day in (start, end):  # a month-end anchor survives short months
                    assert day.day == min(anchor.day, calendar.monthrange(day.year, day.month)[1])
                assert period["issued_at"] >= local_midnight(start, subscription.timezone), period["number"]
            assert covered == subscription.periods_invoiced
            for earlier, later in zip(periods, periods[1:]):
                assert earlier["period_end"] == later["period_start"], f"gap or overlap in {subscription.id}"
            next_start = periods[-1]["period_end"] if periods else anchor
            assert subscription.renews_at == local_midnight(next_start, subscription.timezone)
            renews = subscription.status == "active" and subscription.account_status in ("active", "past_due")
            if self.caught_up and renews:
                assert subscription.renews_at > now, f"subscription {subscription.id} left behind"
        assert not invoiced, "an invoice for a subscription that does not exist"


@pytest.mark.parametrize("kind, examples", [("sqlite", 25), ("postgresql", 10)])
def test_r2_invoices_stay_legal_whatever_customers_and_the_clock_do(databases, kind, examples):
    run_state_machine_as_test(lambda: BillingBooks(databases, kind), settings=settings(
        max_examples=examples, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
