"""Charts as server-side SVG markup, for pages that may run no script and carry no inline style
(the Content-Security-Policy: `script-src 'self'`, `style-src 'self'`): shapes are coloured by
SVG presentation attributes (`fill=`, `stroke=`), which that policy allows, and carry a class a
stylesheet may restyle. Every text is escaped by markupsafe; the result is `Markup`, safe to put
in a Jinja2 template as it is.

Accessible: the `<svg>` is an image named by its `<title>` and described by its `<desc>`; each
bar and point has a `<title>` saying its value; the page shows the same figures in a table.
Pure: values in, markup out; what a value says in words is the caller's (`value_text`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 88, 16, 16, 40  # room for the value axis' labels, and the weeks'
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MOST_LABELS = 8  # week labels at most along the axis (each "2026-W05" needs ~55 of its 536 px); all are in the titles
# Colours that tell apart for the common colour blindnesses (Okabe and Ito's palette).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")
CHART_ID = re.compile(r"[a-z][a-z0-9-]{0,39}")


@dataclass(frozen=True, slots=True)
class Series:
    name: str  # in the legend, and in each value's title
    values: tuple[int | None, ...]  # one per label; None: nothing to show there


def bar_chart(chart_id: str, *, title: str, description: str, labels: Sequence[str], series: Sequence[Series],
              value_text: Callable[[int], str], no_data: str) -> Markup:
    """Bars side by side for each label, one per series, their heights proportional to their
    values (from 0 to the largest of all)."""
    _check(chart_id, labels, series)
    values = [value for each in series for value in each.values if value is not None]
    if not labels or not values:
        return _no_data(chart_id, title, description, no_data)
    top = max(max(values), 1)
    slot = PLOT_WIDTH / len(labels)
    bar = slot * 0.8 / len(series)
    shapes = []
    for index, each in enumerate(series):
        for position, (label, value) in enumerate(zip(labels, each.values)):
            if value is None:
                continue
            height = _y_length(value, top)
            x = LEFT + position * slot + slot * 0.1 + index * bar
            shapes.append(Markup('<rect class="series-{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                                 '<title>{}: {}, {}</title></rect>').format(
                index, _n(x), _n(TOP + PLOT_HEIGHT - height), _n(bar), _n(height), COLOURS[index % len(COLOURS)],
                label, each.name, value_text(value)))
    return _svg(chart_id, title, description, [
        *_value_axis(top, value_text, nothing_above_0=max(values) <= 0), *_label_axis(labels), *shapes,
        *_legend(series)])


def line_chart(chart_id: str, *, title: str, description: str, labels: Sequence[str], series: Sequence[Series],
               value_text: Callable[[int], str], no_data: str, top: int | None = None) -> Markup:
    """A line per series through its values (broken where one is None), from 0 to `top` (default:
    the largest value)."""
    _check(chart_id, labels, series)
    values = [value for each in series for value in each.values if value is not None]
    if not labels or not values:
        return _no_data(chart_id, title, description, no_data)
    top = max(top if top is not None else max(values), 1)
    slot = PLOT_WIDTH / len(labels)
    shapes = []
    for index, each in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        # A line joins neighbouring values only: a label without a value breaks it.
        runs: list[list[tuple[float, float, str, int]]] = [[]]
        for position, (label, value) in enumerate(zip(labels, each.values)):
            if value is None:
                runs.append([])
                continue
            runs[-1].append((LEFT + position * slot + slot / 2, TOP + PLOT_HEIGHT - _y_length(value, top), label,
                             value))
        points = [point for run in runs for point in run]
        for run in runs:
            if len(run) > 1:
                shapes.append(Markup('<polyline class="series-{}" points="{}" fill="none" stroke="{}" '
                                     'stroke-width="2"/>').format(
                    index, " ".join(f"{_n(x)},{_n(y)}" for x, y, _, _ in run), colour))
        shapes.extend(Markup('<circle class="series-{}" cx="{}" cy="{}" r="4" fill="{}"><title>{}: {}, {}</title>'
                             '</circle>').format(index, _n(x), _n(y), colour, label, each.name, value_text(value))
                      for x, y, label, value in points)
    return _svg(chart_id, title, description, [
        *_value_axis(top, value_text), *_label_axis(labels), *shapes, *_legend(series)])


def _check(chart_id: str, labels: Sequence[str], series: Sequence[Series]) -> None:
    if not CHART_ID.fullmatch(chart_id):
        raise ValueError(f"a chart's id is lowercase letters, digits and dashes: {chart_id!r}")
    if not series or any(len(each.values) != len(labels) for each in series):
        raise ValueError("every series needs one value per label")


def _y_length(value: int, top: int) -> float:
    return PLOT_HEIGHT * max(value, 0) / top


def _n(number: float) -> str:
    """A coordinate: two places at most, no trailing zeros."""
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _svg(chart_id: str, title: str, description: str, parts: list[Markup]) -> Markup:
    return Markup('<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}" viewBox="0 0 {w} {h}" '
                  'width="{w}" height="{h}" role="img" aria-labelledby="{id}-title {id}-desc" '
                  'font-family="sans-serif" font-size="11">'
                  '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{parts}</svg>').format(
        id=chart_id, w=WIDTH, h=HEIGHT, title=title, desc=description, parts=Markup("").join(parts))


def _no_data(chart_id: str, title: str, description: str, no_data: str) -> Markup:
    """An empty frame that says there is nothing to draw, rather than an empty axis that could
    read as zeros."""
    return _svg(chart_id, title, description, [
        Markup('<rect class="frame" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#767676"/>').format(
            LEFT, TOP, PLOT_WIDTH, PLOT_HEIGHT),
        Markup('<text class="no-data" x="{}" y="{}" text-anchor="middle" fill="#333333">{}</text>').format(
            _n(LEFT + PLOT_WIDTH / 2), _n(TOP + PLOT_HEIGHT / 2), no_data)])


def _value_axis(top: int, value_text: Callable[[int], str], *, nothing_above_0: bool = False) -> list[Markup]:
    """Lines and labels at 0, half and the top; at 0 alone when every value is 0 (a scale up to
    an amount nobody had would suggest one)."""
    parts = []
    for value in (0,) if nothing_above_0 else sorted({0, top // 2, top}):
        y = TOP + PLOT_HEIGHT - _y_length(value, top)
        parts.append(Markup('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#d0d0d0"/>'
                            '<text x="{}" y="{}" text-anchor="end" fill="#333333">{}</text>').format(
            LEFT, _n(y), LEFT + PLOT_WIDTH, _n(y), LEFT - 6, _n(y + 4), value_text(value)))
    return parts


def _label_axis(labels: Sequence[str]) -> list[Markup]:
    every = math.ceil(len(labels) / MOST_LABELS)
    slot = PLOT_WIDTH / len(labels)
    return [Markup('<text x="{}" y="{}" text-anchor="middle" fill="#333333">{}</text>').format(
        _n(LEFT + position * slot + slot / 2), TOP + PLOT_HEIGHT + 16, label)
        for position, label in enumerate(labels) if position % every == 0]


def _legend(series: Sequence[Series]) -> list[Markup]:
    parts = []
    for index, each in enumerate(series):
        x = LEFT + index * 180
        parts.append(Markup('<rect class="series-{}" x="{}" y="{}" width="10" height="10" fill="{}"/>'
                            '<text x="{}" y="{}" fill="#333333">{}</text>').format(
            index, x, HEIGHT - 14, COLOURS[index % len(COLOURS)], x + 14, HEIGHT - 5, each.name))
    return parts
