from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from renewly.shared.calendar import (
    add_months,
    end_of_day_utc,
    is_known_timezone,
    local_date,
    local_midnight_utc,
    period_boundary,
    validate_interval,
    validate_timezone,
)
from renewly.shared.errors import InvalidInput


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def boundaries(anchor: date, interval: str, count: int) -> list[date]:
    return [period_boundary(anchor, interval, index) for index in range(count)]


def test_a_month_end_anchor_survives_short_months():
    assert boundaries(date(2026, 1, 31), "month", 5) == [
        date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31)]


def test_a_month_end_anchor_lands_on_february_29_in_a_leap_year():
    assert boundaries(date(2028, 1, 31), "month", 3) == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31)]


def test_a_yearly_subscription_from_february_29_renews_on_february_28_and_again_on_29_in_leap_years():
    assert boundaries(date(2028, 2, 29), "year", 5) == [
        date(2028, 2, 29), date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28), date(2032, 2, 29)]


def test_add_months_crosses_year_ends_both_ways():
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert add_months(date(2026, 1, 15), 24) == date(2028, 1, 15)


def test_the_29th_anchor_keeps_its_day_after_february():
    assert add_months(date(2026, 1, 29), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 29), 2) == date(2026, 3, 29)


@pytest.mark.parametrize("day, midnight", [
    (date(2026, 3, 29), utc(2026, 3, 28, 23)),  # the clocks go forward at 02:00 that day
    (date(2026, 3, 30), utc(2026, 3, 29, 22)),
    (date(2026, 10, 25), utc(2026, 10, 24, 22)),  # and back at 03:00 that day
    (date(2026, 10, 26), utc(2026, 10, 25, 23)),
])
def test_local_midnight_in_paris_follows_daylight_saving_time(day, midnight):
    assert local_midnight_utc(day, "Europe/Paris") == midnight


@pytest.mark.parametrize("day, midnight", [
    (date(2026, 3, 8), utc(2026, 3, 8, 8)),
    (date(2026, 3, 9), utc(2026, 3, 9, 7)),
    (date(2026, 11, 1), utc(2026, 11, 1, 7)),
    (date(2026, 11, 2), utc(2026, 11, 2, 8)),
])
def test_local_midnight_in_los_angeles_follows_daylight_saving_time(day, midnight):
    assert local_midnight_utc(day, "America/Los_Angeles") == midnight


def test_the_local_date_of_an_instant_depends_on_the_time_zone():
    instant = utc(2026, 1, 31, 23, 30)
    assert local_date(instant, "UTC") == date(2026, 1, 31)
    assert local_date(instant, "Europe/Paris") == date(2026, 2, 1)
    assert local_date(utc(2026, 2, 1, 7, 59), "America/Los_Angeles") == date(2026, 1, 31)


def test_a_bare_date_means_its_last_instant_in_utc():
    assert end_of_day_utc(date(2026, 2, 28)) == utc(2026, 2, 28, 23, 59, 59, 999999)


def test_time_zones_are_iana_names():
    assert validate_timezone("Europe/Paris") == "Europe/Paris"
    for name in ("Mars/Olympus_Mons", "CEST", "", "europe/paris"):
        with pytest.raises(InvalidInput) as refused:
            validate_timezone(name)
        assert refused.value.code == "unknown_timezone"


def test_a_time_zone_is_known_exactly_when_python_lists_it_without_reading_the_list():
    # is_known_timezone loads the one zone instead of walking the folder (every start checks the
    # seller's zone): the same answer for every listed name, every file of the folder (its
    # right/ and posix/ copies, posixrules, zone.tab, its sub-folders), and odd names.
    listed = zoneinfo.available_timezones()
    names = set(listed) | {"", "Europe", "europe/paris", "Europe/Nowhere", "UTC", "localtime", "posixrules",
                           "right/UTC", "posix/Europe/Paris", "Europe/../Europe/Paris", "/etc/localtime",
                           "../../etc/passwd", "zone.tab", "Etc/GMT+1", "Etc/GMT-14", " UTC"}
    for folder in zoneinfo.TZPATH:
        for path in Path(folder).rglob("*"):
            names.add(str(path.relative_to(folder)))
    assert {name for name in names if is_known_timezone(name)} == listed & names


def test_intervals_are_month_or_year():
    assert [validate_interval("month"), validate_interval("year")] == ["month", "year"]
    with pytest.raises(InvalidInput) as refused:
        validate_interval("week")
    assert refused.value.code == "unknown_interval"
