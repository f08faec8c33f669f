"""What the sweep does with a due case (R8, R8.2, R8.7, R7.1), decided without a database:
which invoices it charges, whether the notice is given now or waits for the charges, the case's
next day, and day 0 of a new case."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from renewly.config.policy import load_policy
from renewly.dunning.rules.notices import CaseInvoice
from renewly.dunning.rules.schedule import CaseSnapshot, evaluate
from renewly.dunning.rules.sweep import days0, decide_case, recorded_steps, warned_by_default
from renewly.payments.rules.charges import NO_CARD

POLICY = load_policy()
DAY0 = date(2026, 3, 1)
FAILED_1, FAILED_2, FAILED_3, WARNING, CANCEL = range(5)


def on_day(day: int) -> date:
    return DAY0 + timedelta(days=day)


def unpaid(invoice_id: int = 1, *, attempted_on: int | None = 0, decline: str | None = "insufficient_funds",
           unsettled: bool = False, retry_asked: bool = False) -> CaseInvoice:
    return CaseInvoice(invoice_id, f"INV-{invoice_id}", 1000, "EUR",
                       on_day(attempted_on) if attempted_on is not None else None, unsettled, decline,
                       attempt_id=invoice_id, retry_asked=retry_asked)


def decide(last_step: int, today: int, invoices: list[CaseInvoice], *, has_card: bool = True,
           warned_on: int | None = None, awaiting: str | None = None, warned_now: bool = False):
    snapshot = CaseSnapshot(DAY0, last_step, on_day(warned_on) if warned_on is not None else None)
    decision = evaluate(POLICY, snapshot, on_day(today))
    return decide_case(POLICY, decision, snapshot, invoices, has_card=has_card, awaiting_step=awaiting,
                       warned_now=warned_now, today=on_day(today))


def test_a_case_with_nothing_unpaid_left_is_settled_and_takes_no_step():
    outcome = decide(FAILED_1, 2, [])
    assert outcome.settled and outcome.last_step is None and outcome.charge == ()


def test_r8_2_a_charging_step_charges_the_unpaid_invoices_and_its_notice_waits_for_the_answers():
    outcome = decide(FAILED_1, 2, [unpaid(1), unpaid(2)])
    assert outcome.charge == (1, 2)
    assert (outcome.notice_now, outcome.awaiting_step) == (False, "payment_failed_2")
    assert outcome.last_step == ("payment_failed_2", 2) and outcome.next_step_on == on_day(4)


def test_r8_7_an_invoice_charged_since_the_step_s_day_is_not_charged_again():
    outcome = decide(FAILED_1, 2, [unpaid(1, attempted_on=2), unpaid(2, attempted_on=0)])
    assert outcome.charge == (2,)


def test_without_a_card_nothing_is_charged_and_the_notice_says_there_is_no_card():
    outcome = decide(FAILED_1, 2, [unpaid(1)], has_card=False)
    assert outcome.charge == () and outcome.notice_now and outcome.reason == NO_CARD


def test_a_notice_given_now_says_the_latest_decline():
    # Both charged on day 21 already (a card update's retry): nothing to charge, the notice now.
    outcome = decide(FAILED_3, 21, [unpaid(1, attempted_on=21, decline="expired_card"),
                                    unpaid(2, attempted_on=21, decline="do_not_honor")])
    assert outcome.charge == () and outcome.notice_now and outcome.reason == "do_not_honor"  # attempt 2 is the latest


def test_a_charge_in_flight_holds_the_notice_even_of_a_step_that_charges_nothing():
    outcome = decide(WARNING, 29, [unpaid(1, unsettled=True)], warned_on=21)
    assert outcome.charge == () and not outcome.notice_now and outcome.awaiting_step == "account_cancelled"
    outcome = decide(WARNING, 29, [unpaid(1, retry_asked=True)], warned_on=21)
    assert not outcome.notice_now


def test_r8_5_a_cancellation_schedules_no_next_step():
    outcome = decide(WARNING, 29, [unpaid(1)], warned_on=21)
    assert outcome.notice_now and outcome.last_step == ("account_cancelled", 29) and outcome.next_step_on is None


def test_the_warning_given_now_is_recorded_and_moves_the_cancellation_by_the_minimum_warning():
    outcome = decide(FAILED_3, 23, [unpaid(1, attempted_on=23)])  # two days late, charged today already
    assert outcome.warned and outcome.notice_now
    assert outcome.next_step_on == on_day(23 + POLICY.minimum_warning_days)


def test_a_warning_whose_notice_waits_leaves_the_cancellation_unscheduled():
    outcome = decide(FAILED_3, 21, [unpaid(1, unsettled=True)])
    assert not outcome.warned and outcome.next_step_on is None and outcome.awaiting_step == "suspension_warning"


def test_a_case_claimed_before_its_next_step_s_day_only_gets_its_next_day():
    outcome = decide(FAILED_2, 3, [unpaid(1)], awaiting="payment_failed_2")
    assert (outcome.last_step, outcome.next_step_on, outcome.awaiting_step) == (None, on_day(4), "payment_failed_2")
    assert outcome.charge == () and not outcome.notice_now


def test_a_case_past_the_warning_without_a_warning_day_counts_as_warned_today():
    assert warned_by_default(POLICY, WARNING, None, None)
    assert not warned_by_default(POLICY, WARNING, on_day(21), None)
    assert not warned_by_default(POLICY, WARNING, None, "suspension_warning")  # its notice is still to come
    assert not warned_by_default(POLICY, FAILED_3, None, None)


def test_steps_recorded_name_the_notice_s_e_mail_and_the_charge_on_the_last_step_only():
    decision = evaluate(POLICY, CaseSnapshot(DAY0, FAILED_1), on_day(5))  # day 2 and day 4, late
    charged = recorded_steps(POLICY, decision, charged=True)
    assert [(name, email, charge) for _, name, _, email, charge in charged] == [
        ("payment_failed_2", None, 0), ("payment_failed_3", POLICY.steps[FAILED_3].email, 1)]
    assert [charge for *_, charge in recorded_steps(POLICY, decision, charged=False)] == [0, 0]


def test_day_0_is_the_earliest_renewal_date_never_before_the_subscription_existed():
    created = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # 11 March in Paris
    assert days0([(7, date(2026, 3, 1), created, "Europe/Paris"),
                  (8, date(2026, 4, 1), created, "UTC"), (8, date(2026, 3, 15), created, "UTC")]) == {
        7: (date(2026, 3, 11), "Europe/Paris"), 8: (date(2026, 3, 15), "UTC")}
