"""Charts as SVG markup (web/charts.py): well-formed XML, bars and points where their values say,
an honest "no data" frame when there is nothing to draw, every text escaped, no script and no
inline style (the pages' Content-Security-Policy allows neither)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from renewly.web.charts import PLOT_HEIGHT, TOP, Series, bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"
WEEKS = ["2026-W01", "2026-W02", "2026-W03"]


def parsed(markup: Markup) -> ElementTree.Element:
    assert isinstance(markup, Markup)
    assert "<script" not in markup and "style=" not in markup and "javascript:" not in markup
    return ElementTree.fromstring(str(markup))


def bars(chart: ElementTree.Element) -> list[ElementTree.Element]:
    return [rect for rect in chart.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]


def failed_and_recovered(failed, recovered, labels=WEEKS) -> Markup:
    return bar_chart("amounts", title="Failed and recovered", description="Per week", labels=labels,
                     series=[Series("failed", tuple(failed)), Series("recovered", tuple(recovered))],
                     value_text=lambda value: f"${value / 100:.2f}", no_data="No data")


def test_a_bar_chart_is_an_accessible_image_named_by_its_title_and_description():
    chart = parsed(failed_and_recovered([1000, 0, 400], [500, 0, 400]))
    assert (chart.get("role"), chart.get("aria-labelledby")) == ("img", "amounts-title amounts-desc")
    assert (chart.find(f"{SVG}title").text, chart.find(f"{SVG}desc").text) == ("Failed and recovered", "Per week")
    assert [bar.find(f"{SVG}title").text for bar in bars(chart)] == [
        "2026-W01: failed, $10.00", "2026-W02: failed, $0.00", "2026-W03: failed, $4.00",
        "2026-W01: recovered, $5.00", "2026-W02: recovered, $0.00", "2026-W03: recovered, $4.00"]
    assert {bar.get("fill") for bar in bars(chart)} == {"#0072B2", "#E69F00"}  # presentation attributes


def test_bars_stand_on_the_axis_their_heights_proportional_to_their_values():
    chart = parsed(failed_and_recovered([1000, 250, 400], [500, 0, 400]))
    heights = [float(bar.get("height")) for bar in bars(chart)]
    assert heights[0] == PLOT_HEIGHT  # the largest value reaches the top
    assert heights == pytest.approx([PLOT_HEIGHT * value / 1000 for value in (1000, 250, 400, 500, 0, 400)], abs=0.01)
    assert {round(float(bar.get("y")) + float(bar.get("height")), 2) for bar in bars(chart)} == {TOP + PLOT_HEIGHT}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)), min_size=1, max_size=30))
def test_property_every_bar_s_height_is_its_share_of_the_largest(pairs):
    labels = [f"w{index}" for index in range(len(pairs))]
    chart = parsed(failed_and_recovered([a for a, _ in pairs], [b for _, b in pairs], labels))
    top = max(max(max(pair) for pair in pairs), 1)
    expected = [PLOT_HEIGHT * a / top for a, _ in pairs] + [PLOT_HEIGHT * b / top for _, b in pairs]
    assert [float(bar.get("height")) for bar in bars(chart)] == pytest.approx(expected, abs=0.01)


def test_nothing_to_draw_is_a_no_data_frame_not_an_empty_axis():
    for chart in (failed_and_recovered([None] * 3, [None] * 3), failed_and_recovered([], [], labels=[])):
        drawn = parsed(chart)
        assert bars(drawn) == []
        assert [text.text for text in drawn.iter(f"{SVG}text")] == ["No data"]


def test_every_text_is_escaped():
    hostile = '<script>alert("x")</script>&'
    chart = bar_chart("hostile", title=hostile, description=hostile, labels=[hostile], series=[Series(hostile, (1,))],
                      value_text=lambda value: hostile, no_data=hostile)
    drawn = parsed(chart)  # still well-formed, no script element
    assert drawn.find(f"{SVG}title").text == hostile
    assert list(drawn.iter(f"{SVG}script")) == []
    assert bars(drawn)[0].find(f"{SVG}title").text == f"{hostile}: {hostile}, {hostile}"


def test_a_line_breaks_where_a_week_has_no_value_and_points_sit_at_their_values():
    chart = parsed(line_chart("share", title="Share", description="Per week", labels=[*WEEKS, "2026-W04"],
                              series=[Series("share", (5000, 10000, None, 2500))],
                              value_text=lambda value: f"{value / 100}%", no_data="No data", top=10000))
    lines = list(chart.iter(f"{SVG}polyline"))
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2  # W01-W02; W04 stands alone
    points = list(chart.iter(f"{SVG}circle"))
    assert [point.find(f"{SVG}title").text for point in points] == [
        "2026-W01: share, 50.0%", "2026-W02: share, 100.0%", "2026-W04: share, 25.0%"]
    assert [float(point.get("cy")) for point in points] == pytest.approx(
        [TOP + PLOT_HEIGHT * (1 - share) for share in (0.5, 1, 0.25)], abs=0.01)


def test_a_chart_id_that_could_break_the_markup_is_refused():
    with pytest.raises(ValueError):
        bar_chart('x" onload="', title="", description="", labels=[], series=[Series("a", ())],
                  value_text=str, no_data="")


def test_zeros_are_data_bars_of_no_height_on_an_axis_that_claims_no_scale():
    chart = parsed(failed_and_recovered([0, 0, 0], [0, 0, 0]))
    assert [float(bar.get("height")) for bar in bars(chart)] == [0.0] * 6
    texts = [text.text for text in chart.iter(f"{SVG}text")]
    assert "No data" not in texts
    assert [text for text in texts if text.startswith("$")] == ["$0.00"]  # 0 alone on the value axis


@pytest.mark.parametrize("count", [4, 12, 26, 52, 104])
def test_week_labels_along_the_axis_never_overlap_whatever_the_number_of_weeks(count):
    """A label such as 2026-W05 is about 55 px wide at the charts' 11 px font: shown ones stand
    at least 60 px apart, the first week always among them (each bar's title names its week)."""
    labels = [f"2026-W{week:02}" for week in range(1, count + 1)]
    chart = parsed(failed_and_recovered([100] * count, [0] * count, labels=labels))
    shown = [text for text in chart.iter(f"{SVG}text") if text.text in labels]
    positions = [float(text.get("x")) for text in shown]
    assert shown[0].text == labels[0] and len(shown) >= min(count, 4)
    assert all(later - earlier >= 60 for earlier, later in zip(positions, positions[1:])), positions
