"""The recovery page's partial (web/console/templates/recovery.html) with its values
(web/recovery_page.py), rendered as the support console will include it: charts, then the same
figures in a table, in English and French, no script and no inline style. Not wired to a route
here: the console mounts it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import date, timedelta
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

import renewly.web
from renewly.config.catalogues import translations
from renewly.dunning.rules.recovery_report import (
    Cancellation,
    CaseOutcome,
    FailedInvoice,
    recovery_report,
    report_weeks,
)
from renewly.web.recovery_page import recovery_page

TEMPLATES = Path(renewly.web.__file__).resolve().parent / "console" / "templates"
SVG = "{http://www.w3.org/2000/svg}"
MONDAY = date(2026, 1, 5)  # 2026-W02


def render(report, locale: str) -> str:
    """As a console page would: autoescape, i18n (newstyle, trimmed), StrictUndefined."""
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, extensions=["jinja2.ext.i18n"])
    environment.policies["ext.i18n.trimmed"] = True
    environment.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    page = recovery_page(report, locale=locale, timezone="Europe/Paris")
    return environment.get_template("recovery.html").render(recovery=page)


@pytest.fixture
def report():
    opened = MONDAY
    return recovery_report(
        report_weeks(date(2026, 1, 14), 2),  # W02, W03
        [FailedInvoice("USD", 6840, 6840, 0, MONDAY), FailedInvoice("USD", 6840, 0, 0, MONDAY + timedelta(days=1)),
         FailedInvoice("EUR", 6840, 0, 6840, MONDAY)],
        [CaseOutcome("USD", opened, opened + timedelta(days=2)), CaseOutcome("USD", opened, None)],
        [Cancellation("USD", date(2026, 1, 13))])


def rows_of(section: ElementTree.Element) -> list[list[str]]:
    return [["".join(cell.itertext()).strip() for cell in row] for row in section.iter("tr")]


def test_each_currency_has_its_charts_and_a_table_of_the_same_figures(report):
    html = render(report, "en")
    # What the console's Content-Security-Policy would block: scripts, inline styles, handlers.
    assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", html)
    page = ElementTree.fromstring(html)  # well-formed, charts included
    assert page.find("h2").text == "Recovery of failed payments"
    eur, usd = page.findall("section")
    assert (eur.find("h3").text, usd.find("h3").text) == ("EUR", "USD")
    charts = usd.findall(f"figure/{SVG}svg")
    assert [chart.find(f"{SVG}title").text for chart in charts] == [
        "Failed and recovered, USD", "Share recovered, USD", "Days to recover, USD"]
    assert rows_of(usd)[1:] == [
        ["2026-W02 Jan 5, 2026", "2", "$136.80", "$68.40", "$0.00", "$68.40", "50%", "1 of 2", "2 days", "2 days",
         "0"],
        ["2026-W03 Jan 12, 2026", "0", "$0.00", "$0.00", "$0.00", "$0.00", "–", "0 of 0", "–", "–", "1"],
        ["All weeks", "2", "$136.80", "$68.40", "$0.00", "$68.40", "50%", "1 of 2", "2 days", "2 days", "1"]]
    assert rows_of(eur)[1][2:7] == ["€68.40", "€0.00", "€68.40", "€0.00", "0%"]


def test_the_page_in_french(report):
    page = ElementTree.fromstring(render(report, "fr"))
    assert page.find("h2").text == "Recouvrement des paiements en échec"
    usd = page.findall("section")[1]
    assert rows_of(usd)[0][:3] == ["Semaine", "Factures en échec", "En échec"]
    first = rows_of(usd)[1]
    assert first[0] == "2026-W02 5 janv. 2026"
    assert (first[6], first[7], first[8]) == ("50\u00a0%", "1 sur 2", "2 jours")
    assert [chart.find(f"{SVG}title").text for chart in usd.findall(f"figure/{SVG}svg")][0] == (
        "En échec et recouvré, USD")


def test_no_rows_in_the_weeks_says_so(report):
    empty = recovery_report(report.weeks, [], [], [])
    page = ElementTree.fromstring(render(empty, "en"))
    assert page.findall("section") == []
    assert page.find("p[@class='no-data']").text == (
        "No payment entered dunning and no account was cancelled in these weeks.")


def test_a_week_without_failures_draws_no_share_point_and_nothing_recovered_draws_no_days_line():
    weeks = report_weeks(MONDAY, 2)
    report = recovery_report(weeks, [FailedInvoice("USD", 100, 0, 0, MONDAY)], [CaseOutcome("USD", MONDAY, None)], [])
    page = ElementTree.fromstring(render(report, "en"))
    share, days = page.find("section").findall(f"figure/{SVG}svg")[1:]
    assert len(list(share.iter(f"{SVG}circle"))) == 1  # W02 only: nothing failed in W01
    assert [text.text for text in days.iter(f"{SVG}text")] == ["No data for these weeks"]
