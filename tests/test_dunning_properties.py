"""A property of the whole dunning machinery (R8.6, R8.7, R9, R11): for random timelines of card
updates (good or declining cards), support grants and batch schedules with downtime, every
e-mail of a case is sent at most once, no failure e-mail follows the confirmation, and the
account ends in the state the policy says.

The expected state comes from a small model of the rules, not from the code under test: a good
card on file when the batches (re)start is charged by the next payment batch (R7.1), which runs
before the dunning batch of the same tick; the first tick at or after day 21 warns an unpaid
account (R8.4), and the first tick at or after day 29, and at least eight days after the warning
(the policy's minimum warning), cancels it (R8.5), late or not; a cancelled account's owner may
update the card only during a running reactivation, and support grants one only to a cancelled
account with none running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from renewly.adapters.db.tables import accounts, invoices, outbox, reactivations
from renewly.dunning.reactivation import grant_reactivation
from renewly.scheduler import advance
from renewly.shared.errors import NotAllowed
from tests.builders import subscribed, team_plan, with_card

DECLINES = "4000000000000341"
GOOD_CARD = "4242424242424242"
STEPS = [(0, "payment_failed_1"), (2, "payment_failed_2"), (4, "payment_failed_3"), (21, "suspension_warning"),
         (29, "account_cancelled")]  # the default policy: (day, e-mail)
FAILURE_EMAILS = [email for _, email in STEPS]
BANNERS = {0: "none", 2: "none", 4: "owner_and_admins", 21: "everyone", 29: "everyone"}
WARNING_DAY, CANCEL_DAY, MINIMUM_WARNING, WINDOW_DAYS, DELETION_DAYS = 21, 29, 8, 7, 90
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)  # the renewal date; the account is in UTC


def at(day: int, hour: int = 12) -> datetime:
    return DAY0 + timedelta(days=day, hours=hour)


@dataclass(frozen=True)
class Timeline:
    horizon: int  # actions happen at noon on days 0..horizon; then two days with the batches running
    actions: tuple[tuple[int, str], ...]  # (day, "good_card" | "bad_card" | "grant"), in order
    down: frozenset[int]  # days from whose noon to the next noon the batches do not run


@st.composite
def timelines(draw) -> Timeline:
    horizon = draw(st.one_of(st.integers(8, CANCEL_DAY - 1), st.integers(CANCEL_DAY + 1, 42)))
    # Half the actions fall after the cancellation day, where grants matter.
    day = st.one_of(st.integers(0, horizon), st.integers(min(CANCEL_DAY, horizon), horizon))
    actions = draw(st.lists(st.tuples(day, st.sampled_from(["good_card", "bad_card", "grant"])), max_size=5))
    windows = draw(st.lists(st.tuples(st.integers(0, horizon), st.integers(1, 12)), max_size=2))
    return Timeline(horizon, tuple(sorted(actions, key=lambda action: action[0])),
                    frozenset(d for start, length in windows for d in range(start, start + length)))


@dataclass
class Model:
    """What the rules say, given what was played so far."""

    card_good: bool = False
    paid_at: datetime | None = None
    warned_day: int | None = None
    cancelled_at: datetime | None = None
    windows: list[int] = field(default_factory=list)  # the days support granted a reactivation

    def cancelled(self, now: datetime) -> bool:
        return self.paid_at is None and self.cancelled_at is not None and self.cancelled_at <= now

    def window_running(self, day: int) -> bool:
        # A window granted on day D is open until the end of day D + 7 (the account is in UTC).
        return any(granted <= day <= granted + WINDOW_DAYS for granted in self.windows)

    def batches_ran(self, start_day: int, end_day: int) -> None:
        """The batches ran from noon of `start_day` to noon of `end_day`: a step due on day D is
        taken at midnight of D, or at the first tick (13:00 of `start_day`) if D came before."""
        if self.paid_at is not None:
            return
        if self.card_good:  # the payment batch's first tick, before the dunning batch of that tick
            self.paid_at = at(start_day, 13)
            return
        if self.warned_day is None and end_day >= WARNING_DAY:
            self.warned_day = max(start_day, WARNING_DAY)
        if self.warned_day is not None and self.cancelled_at is None:
            cancel_day = max(CANCEL_DAY, self.warned_day + MINIMUM_WARNING)
            if end_day >= cancel_day:
                self.cancelled_at = at(cancel_day, 0) if start_day < cancel_day else at(start_day, 13)


def play(app, timeline: Timeline) -> Model:
    account_id, _ = subscribed(app, card=DECLINES, plan=team_plan(app, interval="year"))  # no renewal in view
    model = Model()
    advance(app, timedelta(hours=12))  # day 0: declined at 01:00, the case opens
    day = 0
    while day <= timeline.horizon:
        for _, kind in [action for action in timeline.actions if action[0] == day]:
            now = at(day)
            if kind == "grant":
                expected = model.cancelled(now) and not model.window_running(day)
                accepted = attempt(grant_reactivation, app, account_id, days=None, reason="asked",
                                   actor="support:test")
                if accepted:
                    model.windows.append(day)
            else:
                expected = not model.cancelled(now) or model.window_running(day)
                accepted = attempt(with_card, app, account_id, GOOD_CARD if kind == "good_card" else DECLINES)
                if accepted:
                    model.card_good = kind == "good_card"
            assert accepted == expected, (day, kind)
        running = day not in timeline.down
        end = day + 1
        while (end <= timeline.horizon and (end not in timeline.down) == running
               and not any(d == end for d, _ in timeline.actions)):
            end += 1
        advance(app, timedelta(days=end - day), run_batches=running)
        if running:
            model.batches_ran(day, end)
        day = end
    advance(app, timedelta(days=2))  # whatever was down comes back
    model.batches_ran(day, day + 2)
    return model


def attempt(action, *args, **kwargs) -> bool:
    """Whether the service accepted the request (a refusal is NotAllowed)."""
    try:
        action(*args, **kwargs)
    except NotAllowed:
        return False
    return True


def check(app, timeline: Timeline) -> None:
    model = play(app, timeline)
    final_day = (app.clock.now() - DAY0).days
    with app.engine.connect() as conn:
        account = conn.execute(select(accounts)).one()
        invoice_status = conn.execute(select(invoices.c.status)).scalar_one()
        sent = conn.execute(select(outbox.c.id, outbox.c.payload).where(outbox.c.topic == "email")
                            .order_by(outbox.c.id)).all()
        outcomes = conn.execute(select(reactivations.c.outcome).order_by(reactivations.c.id)).scalars().all()
    every_kind = [payload["kind"] for _, payload in sent if payload["kind"] != "invoice"]  # R4.3's, not dunning's
    kinds = [kind for kind in every_kind if kind != "card_retry_declined"]  # the owner's, per declined new card

    # Each e-mail of the case at most once, in the policy's order; none after the confirmation.
    assert len(kinds) == len(set(kinds)), every_kind
    failures = [kind for kind in kinds if kind != "payment_confirmed"]
    assert failures == sorted(failures, key=FAILURE_EMAILS.index), kinds
    if "payment_confirmed" in kinds:
        assert every_kind[-1] == "payment_confirmed", every_kind
    assert all(payload["recipients"] == ["owner@acme.test"] for _, payload in sent)

    if model.paid_at is not None:
        assert (invoice_status, account.status, account.banner) == ("paid", "active", "none")
        assert (account.cancelled_at, account.deletion_due_at) == (None, None)
        assert kinds.count("payment_confirmed") == 1
        assert ("account_cancelled" in kinds) == (model.cancelled_at is not None)  # cancelled, then paid
        assert all(outcome in ("paid", "expired") for outcome in outcomes)
        return
    assert invoice_status == "open"
    assert "payment_confirmed" not in kinds
    # A late batch sends the latest step's e-mail, and the warning before any cancellation.
    latest_day, latest_email = [step for step in STEPS if step[0] <= final_day and step[0] < CANCEL_DAY][-1]
    if model.cancelled_at is not None:
        latest_day, latest_email = STEPS[-1]
    assert failures[-1] == latest_email, kinds
    if model.warned_day is not None:
        assert "suspension_warning" in kinds, kinds
    if model.cancelled_at is not None:
        assert (account.status, account.cancelled_at) == ("cancelled", model.cancelled_at)
        # On the 90th local day after the cancellation's; grants and windows that end unpaid never
        # move it (R9.3).
        assert account.deletion_due_at == DAY0.replace(day=1) + timedelta(
            days=(model.cancelled_at - DAY0).days + DELETION_DAYS)
        assert len(outcomes) == len(model.windows)
    else:
        assert (account.status, account.banner) == ("past_due", BANNERS[latest_day])
        assert outcomes == []


SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
CANCELLED_THEN_REACTIVATED = Timeline(34, ((31, "grant"), (32, "good_card")), frozenset())
DOWN_WHILE_THE_CARD_CHANGES = Timeline(30, ((3, "bad_card"), (24, "good_card"), (25, "bad_card")),
                                       frozenset(range(2, 27)))
PAID_DURING_DOWNTIME = Timeline(30, ((24, "good_card"),), frozenset(range(10, 35)))
DOWN_FROM_THE_WARNING_TO_PAST_THE_CANCELLATION = Timeline(34, (), frozenset(range(20, 33)))


@settings(max_examples=20, deadline=None, suppress_health_check=SLOW)
@example(timeline=CANCELLED_THEN_REACTIVATED)
@example(timeline=DOWN_WHILE_THE_CARD_CHANGES)
@example(timeline=PAID_DURING_DOWNTIME)
@example(timeline=DOWN_FROM_THE_WARNING_TO_PAST_THE_CANCELLATION)
@given(timeline=timelines())
def test_r8_r9_r11_random_timelines_end_as_the_policy_says_sqlite(databases, timeline):
    check(databases.fresh_app("sqlite"), timeline)


@settings(max_examples=3, deadline=None, suppress_health_check=SLOW)
@example(timeline=CANCELLED_THEN_REACTIVATED)
@given(timeline=timelines())
@pytest.mark.postgres_only
def test_r8_r9_r11_random_timelines_end_as_the_policy_says_postgresql(databases, timeline):
    check(databases.fresh_app("postgresql"), timeline)
