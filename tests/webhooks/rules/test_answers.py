"""What an endpoint's answer means, when a delivery is tried again, when an endpoint is disabled."""

from datetime import UTC, datetime, timedelta

import pytest

from renewly.config.settings import DEFAULT_WEBHOOK_RETRIES
from renewly.webhooks.rules.answers import (
    Answer,
    EndpointHealth,
    Next,
    Status,
    after_attempt,
    bounded,
    endpoint_health,
    retry_span,
    retry_wait,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
SCHEDULE = [timedelta(seconds=wait) for wait in DEFAULT_WEBHOOK_RETRIES]
OK, BUSY, TIMEOUT = Answer(200, None, 12), Answer(503, None, 40), Answer(None, "timed out after 15 s", 15000)


@pytest.mark.parametrize(("status", "delivered"), [
    (200, True), (201, True), (204, True), (299, True), (301, False), (302, False), (400, False), (410, False),
    (429, False), (500, False), (503, False), (None, False)])
def test_only_a_2xx_is_delivery_a_redirect_a_4xx_a_5xx_or_no_response_is_a_failed_attempt(status, delivered):
    assert Answer(status, None if status else "connection dropped", 5).delivered is delivered


def test_the_schedule_is_standard_webhooks_own_then_daily_and_spans_three_days():
    assert [retry_wait(n, SCHEDULE) for n in range(1, 11)] == [
        timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=5),
        timedelta(hours=10), timedelta(hours=10), timedelta(days=1), timedelta(days=1), None]
    assert timedelta(days=3) <= retry_span(SCHEDULE) < timedelta(days=3, hours=6)


def test_a_failed_attempt_is_tried_again_after_its_wait_until_the_schedule_is_spent_then_it_has_failed():
    assert after_attempt(Status.PENDING, 1, BUSY, AT, SCHEDULE) == Next(Status.PENDING, AT + timedelta(seconds=5))
    assert after_attempt(Status.PENDING, 4, TIMEOUT, AT, SCHEDULE) == Next(Status.PENDING, AT + timedelta(hours=2))
    assert after_attempt(Status.PENDING, 9, BUSY, AT, SCHEDULE) == Next(Status.PENDING, AT + timedelta(days=1))
    assert after_attempt(Status.PENDING, 10, BUSY, AT, SCHEDULE) == Next(Status.FAILED, None)


def test_a_2xx_delivers_at_any_try_and_a_replay_is_one_more_try_whatever_the_schedule_said():
    assert after_attempt(Status.PENDING, 10, OK, AT, SCHEDULE) == Next(Status.DELIVERED, None)
    assert after_attempt(Status.REPLAY, 1, BUSY, AT, SCHEDULE) == Next(Status.FAILED, None)
    assert after_attempt(Status.REPLAY, 14, OK, AT, SCHEDULE) == Next(Status.DELIVERED, None)


def test_a_wait_follows_a_failure():
    with pytest.raises(ValueError):
        retry_wait(0, SCHEDULE)


def test_an_endpoint_fails_from_its_first_failure_after_a_success_and_is_disabled_after_three_days_of_failures():
    three_days = timedelta(days=3)
    assert endpoint_health(None, [BUSY, TIMEOUT], AT, three_days) == EndpointHealth(AT, False)
    later = AT + timedelta(days=2, hours=23)
    assert endpoint_health(AT, [BUSY], later, three_days) == EndpointHealth(AT, False)
    assert endpoint_health(AT, [BUSY], AT + three_days, three_days) == EndpointHealth(AT, True)
    # One success among the answers is enough: the endpoint works, some events fail there.
    assert endpoint_health(AT, [BUSY, OK], AT + timedelta(days=4), three_days) == EndpointHealth(None, False)


def test_an_answer_says_itself_on_one_line_and_excerpts_are_bounded():
    assert (BUSY.describe(), TIMEOUT.describe(), Answer(None, None, 1).describe()) == (
        "HTTP 503", "timed out after 15 s", "no response")
    assert bounded("x" * 10, 10) == "x" * 10
    assert bounded("x" * 11, 10) == "x" * 9 + "…"
