"""R8 as the customer lives it, whatever the cadence of the batches (R8.1-R8.5, R10.1).

One account whose renewal of day 0 is declined and never paid, in UTC, in Europe/Paris (the
schedule spans the spring change of 29 March 2026) or in America/Los_Angeles (8 March 2026).
Its batches run on ticks every minute, every hour, or as one `renewly run` a day at 00:05 or at
23:55 local time (a daily cron). Each way, the e-mails, the charge attempts, the banners, the
cancellation and the deletion fall on the same local days: 0, 2, 4, 21, 29 and 119. And every
failure e-mail is written after the declined attempt it reports, which it names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import accounts, outbox, payment_attempts
from renewly.scheduler import advance, run_all
from renewly.shared.calendar import local_date
from tests.builders import subscribed, team_plan
from tests.conftest import Databases

DAY0 = date(2026, 3, 1)
DECLINES = "4000000000000341"  # saves fine, every charge is declined
ZONES = ("UTC", "Europe/Paris", "America/Los_Angeles")
CADENCES = ("every_minute", "every_hour", "daily_00_05", "daily_23_55")
LAST_DAY = 31
STEP_EMAILS = [(0, "payment_failed_1"), (2, "payment_failed_2"), (4, "payment_failed_3"), (21, "suspension_warning"),
               (29, "account_cancelled")]


@dataclass
class Lived:
    emails: list[tuple[int, str]]  # (local day, kind)
    attempts: list[int]  # local days of the charge attempts
    banners: list[tuple[int, dict[str, str]]]  # (local day, what each role sees) from account.dunning_state
    cancelled_on: int
    deletion_on: int  # the local day the account's data is due for deletion
    deleted_on: int | None  # the local day the retention batch deleted it
    late_or_unnamed: list[str]  # failure e-mails written before the attempt they report, or naming none


def day_of(instant: datetime, zone: str) -> int:
    return (local_date(instant, zone) - DAY0).days


def local(day: int, clock: time, zone: str) -> datetime:
    return datetime.combine(DAY0 + timedelta(days=day), clock, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def live(app, zone: str, cadence: str) -> Lived:
    account_id, _ = subscribed(app, card=DECLINES, timezone=zone, start=DAY0, plan=team_plan(app, currency="EUR"),
                               currency="EUR")
    every_day_to(app, zone, cadence, LAST_DAY)
    with app.engine.connect() as conn:
        account = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
        written = conn.execute(select(outbox.c.created_at, outbox.c.topic, outbox.c.payload)
                               .where(outbox.c.account_id == account_id).order_by(outbox.c.id)).all()
        tried = {row.id: row for row in conn.execute(select(payment_attempts).order_by(payment_attempts.c.id))}
    # Down until the day before the deletion's, then on again, the same way.
    every_day_to(app, zone, cadence, 119, first=118)
    with app.engine.connect() as conn:
        deleted_at = conn.execute(select(accounts.c.deleted_at).where(accounts.c.id == account_id)).scalar()
    late_or_unnamed = []
    for at, topic, payload in written:
        if topic != "email" or payload["kind"] in ("account_cancelled", "payment_confirmed", "invoice"):
            continue
        reported = [tried[attempt_id] for attempt_id in payload.get("attempts", [])]
        if not reported or any(a.status != "declined" or a.settled_at > at for a in reported):
            late_or_unnamed.append(f"{payload['kind']} at {at}: {[(a.status, a.settled_at) for a in reported]}")
    return Lived(
        emails=[(day_of(at, zone), payload["kind"]) for at, topic, payload in written
                if topic == "email" and payload["kind"] != "invoice"],  # the invoices' e-mails are R4.3's
        attempts=[day_of(attempt.created_at, zone) for attempt in tried.values()],
        banners=[(day_of(at, zone), payload["banners"]) for at, topic, payload in written
                 if topic == "account.dunning_state"],
        cancelled_on=day_of(account.cancelled_at, zone) if account.cancelled_at else -1,
        deletion_on=day_of(account.deletion_due_at, zone) if account.deletion_due_at else -1,
        deleted_on=day_of(deleted_at, zone) if deleted_at else None,
        late_or_unnamed=late_or_unnamed)


def every_day_to(app, zone: str, cadence: str, last: int, *, first: int = -1) -> None:
    """Time passes to day `last` with the batches on ticks, or with one run a day at a local time;
    from the current moment to day `first` the service is down."""
    if cadence in ("every_minute", "every_hour"):
        advance(app, local(first, time(12), zone) - app.clock.now(), run_batches=False)
        for day in range(first + 1, last + 1):
            advance(app, local(day, time(12), zone) - app.clock.now())
        return
    at = time(0, 5) if cadence == "daily_00_05" else time(23, 55)
    for day in range(first, last + 1):
        advance(app, local(day, at, zone) - app.clock.now(), run_batches=False)
        run_all(app, app.clock.now())


# Under `make test` (pytest-xdist), the tests of this module run in one process: their module
# fixture (every zone and cadence, lived once per engine) would otherwise be made again in each.
pytestmark = pytest.mark.xdist_group("cadences")


@pytest.fixture(scope="module")
def lives_of(request, tmp_path_factory, sqlite_template):
    """Every zone and cadence lived on an engine, once per engine in this process: pytest does not
    keep a parametrized module fixture's instances apart when the tests' own parameters
    interleave them, and each life of the twelve takes seconds."""
    with pytest.MonkeyPatch.context() as patch:  # no RENEWLY_* from the shell, as for every test
        for name in [n for n in os.environ if n.startswith("RENEWLY_") and not n.startswith("RENEWLY_TEST_")]:
            patch.delenv(name)
        databases = Databases(request, tmp_path_factory.mktemp("cadences"), sqlite_template)
        found: dict[str, dict[tuple[str, str], Lived]] = {}

        def lives(kind: str) -> dict[tuple[str, str], Lived]:
            if kind not in found:
                found[kind] = {(zone, cadence): live(app_of(databases, kind, cadence), zone, cadence)
                               for zone in ZONES for cadence in CADENCES}
            return found[kind]
        try:
            yield lives
        finally:
            databases.dispose()


def app_of(databases: Databases, kind: str, cadence: str):
    minutes = {"every_minute": 1}.get(cadence, 60)
    return databases.fresh_app(
        kind, datetime(2026, 2, 27, 12, tzinfo=UTC),
        batches={"renewal_interval_minutes": minutes, "dunning_interval_minutes": minutes,
                 "retention_interval_minutes": minutes},
        payments={"collect_interval_minutes": minutes, "void_interval_minutes": minutes})


@pytest.fixture(params=["sqlite", "postgresql"])
def lives(request, lives_of) -> dict[tuple[str, str], Lived]:
    """Every zone and cadence, lived once per engine (each on a database of its own)."""
    return lives_of(request.param)


WAYS = [(zone, cadence) for zone in ZONES for cadence in CADENCES]


@pytest.mark.parametrize("zone, cadence", WAYS)
def test_r8_the_e_mails_fall_on_days_0_2_4_21_29_whatever_the_cadence(lives, zone, cadence):
    assert lives[(zone, cadence)].emails == STEP_EMAILS


@pytest.mark.parametrize("zone, cadence", WAYS)
def test_r8_a_charge_on_days_0_2_4_21_and_none_after(lives, zone, cadence):
    assert lives[(zone, cadence)].attempts == [0, 2, 4, 21]


@pytest.mark.parametrize("zone, cadence", WAYS)
def test_r8_every_failure_e_mail_comes_after_the_declined_attempt_it_names(lives, zone, cadence):
    assert lives[(zone, cadence)].late_or_unnamed == []


@pytest.mark.parametrize("zone, cadence", WAYS)
def test_r8_3_r8_4_r8_5_banners_change_on_days_4_21_and_29_and_events_say_what_each_role_sees(lives, zone, cadence):
    none = {"owner": "none", "admin": "none", "agent": "none"}
    assert lives[(zone, cadence)].banners == [
        (0, none),  # past due: no banner yet
        (4, {"owner": "owner_and_admins", "admin": "owner_and_admins", "agent": "none"}),
        (21, {"owner": "everyone", "admin": "everyone", "agent": "everyone"}),
        (29, {"owner": "cancelled", "admin": "cancelled", "agent": "cancelled"})]


@pytest.mark.parametrize("zone, cadence", WAYS)
def test_r8_5_r10_1_cancelled_on_day_29_deleted_on_day_119(lives, zone, cadence):
    lived = lives[(zone, cadence)]
    assert (lived.cancelled_on, lived.deletion_on, lived.deleted_on) == (29, 119, 119)
