"""The retention batch purges the rows of signing in once they no longer serve: portal links a
week after they expired, portal and console sessions a week after they ended (signed out,
expired, or idle), refused console sign-ins once outside the throttle's window; never a live
session, a link that still works, nor a refusal the throttle still counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from renewly.adapters.db.tables import portal_links, portal_sessions, staff_sessions, staff_sign_in_failures
from renewly.console import sessions as console
from renewly.console.staff import create_staff
from renewly.portal import sessions as portal
from renewly.retention.deletion import purge_due
from renewly.scheduler import advance
from tests.builders import OPERATOR, customer

OWNER = "owner@acme.test"
STAFF = "sam@renewly.example"
PASSWORD = "correct horse battery staple"
TABLES = {"portal_links": portal_links, "portal_sessions": portal_sessions, "staff_sessions": staff_sessions,
          "staff_sign_in_failures": staff_sign_in_failures}


def counts(app) -> dict[str, int]:
    with app.engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in TABLES.items()}


def open_link(app, account_id: int) -> portal.SignedIn:
    link = portal.create_link(app, account_id, member=OWNER, actor=OPERATOR)
    return portal.sign_in(app, link.url.split(portal.PATH)[1])


@pytest.fixture
def signed_in_rows(app, cheap_argon2):
    """At the clock's now: a portal link used, its session signed out; a link never opened (it
    expires in 5 minutes); a staff session in use (idle after 30 minutes); a refused console
    sign-in (two rows: its IP address, its e-mail address)."""
    account_id = customer(app, owner=OWNER)
    portal.sign_out(app, open_link(app, account_id).secret)
    portal.create_link(app, account_id, member=OWNER, actor=OPERATOR)
    create_staff(app, email=STAFF, name="Sam", role="support", password=PASSWORD, actor=OPERATOR)
    console.sign_in(app, email=STAFF, password=PASSWORD, ip="203.0.113.7")
    with pytest.raises(console.SignInRefused):
        console.sign_in(app, email=STAFF, password="not the password", ip="203.0.113.8")
    assert counts(app) == {"portal_links": 2, "portal_sessions": 1, "staff_sessions": 1, "staff_sign_in_failures": 2}
    return app.clock.now()


def test_each_sign_in_row_goes_only_once_past_its_keeping(app, signed_in_rows):
    start = signed_in_rows
    # (instant, rows the run purges, what is left after it)
    story = [
        (timedelta(minutes=14), 0, (2, 1, 1, 2)),  # the refusals still count for the throttle
        (timedelta(minutes=15), 2, (2, 1, 1, 0)),  # outside the window: of no use any more
        (timedelta(days=7) - timedelta(minutes=1), 0, (2, 1, 1, 0)),
        (timedelta(days=7), 1, (2, 0, 1, 0)),  # a week after its sign-out
        (timedelta(days=7, minutes=5), 2, (0, 0, 1, 0)),  # a week after they expired, used or not
        (timedelta(days=7, minutes=29), 0, (0, 0, 1, 0)),
        (timedelta(days=7, minutes=30), 1, (0, 0, 0, 0)),  # a week after it went idle
    ]
    for after, purged, left in story:
        report = purge_due(app, start + after)
        assert (after, report.sign_ins_purged, tuple(counts(app).values())) == (after, purged, left)
        assert report.did_anything is bool(purged)
    assert purge_due(app, start + timedelta(days=30)).sign_ins_purged == 0  # a second run: nothing left


def test_a_live_session_and_a_working_link_are_kept_however_old_the_rest(app, signed_in_rows):
    advance(app, timedelta(days=30), run_batches=False)
    account_id = customer(app, name="Later", owner="later@acme.test")
    live = portal.sign_in(app, portal.create_link(app, account_id, member="later@acme.test",
                                                  actor=OPERATOR).url.split(portal.PATH)[1])
    portal.create_link(app, account_id, member="later@acme.test", actor=OPERATOR)
    report = purge_due(app, app.clock.now())
    assert report.sign_ins_purged == 6  # everything of the fixture's, a month old
    assert counts(app) == {"portal_links": 2, "portal_sessions": 1, "staff_sessions": 0, "staff_sign_in_failures": 0}
    assert portal.session_of(app, live.secret) is not None
    assert report.describe() == "0 account(s) deleted, 0 invoice(s) purged, 6 sign-in row(s) purged"


def test_the_test_clock_runs_the_purge_when_the_first_row_falls_due(app, signed_in_rows):
    """The retention batch says when its next sign-in row falls due, so that a worker and the
    test clock run it then, and not at every tick."""
    start = signed_in_rows
    move = advance(app, timedelta(days=8))
    purges = [(run.at - start, run.report.sign_ins_purged) for run in move.runs
              if run.batch == "retention" and run.report.sign_ins_purged]
    # On the hour (the batch's interval): the refusals 15 minutes old at 1:00; the session signed
    # out at 0:00 a week later; at 1:00 that day the links (expired at 0:05) and the staff
    # session (idle since 0:30).
    assert purges == [(timedelta(hours=1), 2), (timedelta(days=7), 1), (timedelta(days=7, hours=1), 3)]
    assert counts(app) == dict.fromkeys(TABLES, 0)
