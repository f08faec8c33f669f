from datetime import timedelta

import pytest

from renewly.mail.rules.answers import SmtpAnswer, Verdict, retry_delay, verdict


@pytest.mark.parametrize(("code", "expected"), [
    (250, Verdict.DELIVERED), (421, Verdict.TRY_AGAIN), (451, Verdict.TRY_AGAIN), (452, Verdict.TRY_AGAIN),
    (None, Verdict.TRY_AGAIN), (550, Verdict.FAILED), (554, Verdict.FAILED)])
def test_a_2xx_delivers_a_4xx_or_no_reply_is_tried_again_a_5xx_fails_for_good(code, expected):
    assert verdict(SmtpAnswer(code, "said")) is expected


def test_an_address_no_envelope_can_hold_fails_for_good_though_no_server_said_so():
    assert verdict(SmtpAnswer(None, "cannot be sent", permanent=True)) is Verdict.FAILED


def test_the_delay_doubles_at_each_failure_up_to_its_cap_and_never_overflows():
    first, cap = timedelta(minutes=1), timedelta(hours=1)
    assert [retry_delay(n, first, cap).total_seconds() for n in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(10_000, first, cap) == cap


def test_an_answer_describes_itself_on_one_line():
    assert SmtpAnswer(550, "5.1.1 no such\r\n user").describe() == "550 5.1.1 no such user"
    assert SmtpAnswer(None, "no connection to smtp:587").describe() == "no connection to smtp:587"
