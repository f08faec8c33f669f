"""Every batch's report says itself one way (renewly.batches.reports): the command line prints
`describe()`, exits 1 when `left_undone`, and prints `as_json()` under --json, whatever the batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from renewly.batches.reports import BatchFailed, BatchReport
from renewly.billing.renewals import RenewalReport
from renewly.dunning.sweep import DunningReport
from renewly.payments.collect import CollectReport
from renewly.payments.verifications import VoidReport
from renewly.retention.deletion import RetentionReport

FEBRUARY_FIRST = datetime(2026, 2, 1, tzinfo=UTC)
EMPTY = [RenewalReport(invoices_issued=0, subscriptions_renewed=0, as_of=FEBRUARY_FIRST), CollectReport(),
         DunningReport(), VoidReport(), RetentionReport()]


@pytest.mark.parametrize("report", EMPTY, ids=lambda report: type(report).__name__)
def test_every_batch_report_is_a_batch_report_that_did_nothing_and_left_nothing(report):
    assert isinstance(report, BatchReport)
    assert (report.did_anything, report.left_undone, report.parked) == (False, False, 0)
    assert report.as_json() == vars(report)  # its counts, as --json printed them before


def test_a_report_that_parked_rows_left_them_undone_and_says_where_they_are():
    report = DunningReport(steps_taken=3, parked=2)
    assert report.left_undone
    assert report.describe().endswith("3 step(s) taken, 0 e-mail(s), 0 charge(s) requested (0 notice(s) wait for "
                                      "their answers), 0 account(s) cancelled, 0 reactivation(s) ended unpaid; "
                                      "2 parked (renewly problems)")
    assert "parked" not in RenewalReport(invoices_issued=4, subscriptions_renewed=4, as_of=FEBRUARY_FIRST).describe()


def test_a_failed_batch_left_its_work_undone_and_says_why():
    failed = BatchFailed("RuntimeError: a bug")
    assert isinstance(failed, BatchReport)
    assert (failed.left_undone, failed.parked, failed.did_anything) == (True, 0, False)
    assert failed.describe() == "failed: RuntimeError: a bug"
    assert failed.as_json() == {"reason": "RuntimeError: a bug", "did_anything": False}


def test_the_payment_batch_says_what_it_collected_in_each_currency_with_its_symbol():
    report = CollectReport(attempted=3, succeeded=2, declined=1, collected={"USD": 3800, "EUR": 1900})
    assert report.describe() == ("3 charge(s): 2 succeeded, 1 declined, 0 without answer; 0 earlier attempt(s) "
                                 "settled; collected €19.00, $38.00")


def test_the_retention_batch_names_the_accounts_the_gateway_refused():
    report = RetentionReport(accounts_deleted=1, gateway_failures=[7, 9])
    assert report.describe() == ("1 account(s) deleted, 0 invoice(s) purged, 0 sign-in row(s) purged; gateway "
                                 "refused account(s) 7, 9, tried again next run")
