"""Bar charts laid out for inline SVG: pure geometry from numbers, no I/O, no drawing library.

The pages draw their charts on the server (templates/chart.html renders a `Chart`), so a chart
needs no script, no third-party request and nothing the CSP would have to allow. A chart never
carries meaning by colour alone: each segment has a fill *pattern* (solid or hatched, named in a
legend in words), every bar a text title with its value, the axis is labelled with numbers, and
each page puts the same numbers in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

WIDTH = 360  # the viewBox: phone first; it scales to the column's width
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 8, 12, 28
MAX_GRIDLINES = 5


class Fill(StrEnum):
    SOLID = "solid"
    HATCHED = "hatched"


@dataclass(frozen=True)
class Segment:
    value: int  # >= 0
    fill: Fill = Fill.SOLID


@dataclass(frozen=True)
class Column:
    label: str  # under the axis; "" to leave this column unlabelled (crowded axes)
    title: str  # what a pointer or a screen reader's object navigation reads: "11月3日: 8,210歩"
    segments: tuple[Segment, ...]  # stacked from the axis up


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: Fill


@dataclass(frozen=True)
class PlacedColumn:
    title: str
    label: str
    label_x: float
    rects: tuple[Rect, ...]


@dataclass(frozen=True)
class Gridline:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    axis_y: float  # the baseline (value 0)
    label_y: float  # where the column labels sit
    gridlines: tuple[Gridline, ...]
    columns: tuple[PlacedColumn, ...]
    fills: frozenset[Fill]  # which fills occur (the legend shows those)


def nice_step(largest: int, lines: int = MAX_GRIDLINES) -> int:
    """The gridline step: 1, 2 or 5 times a power of ten, so that at most `lines` gridlines
    above zero cover `largest` (at least 1)."""
    if largest <= 0:
        return 1
    raw = largest / lines
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for multiple in (1, 2, 5, 10):
        step = multiple * power
        if step * lines >= largest:
            return int(step)
    return int(10 * power)  # pragma: no cover - the loop's last multiple always fits


def bar_chart(columns: Sequence[Column], *, number: str = "{:,}") -> Chart:
    """Lay out `columns` left to right over the plot; the value axis starts at zero and ends at
    the first gridline at or above the tallest stack."""
    totals = [sum(segment.value for segment in column.segments) for column in columns]
    if any(segment.value < 0 for column in columns for segment in column.segments):
        raise ValueError("a bar chart draws counts: no negative values")
    step = nice_step(max(totals, default=0))
    top_value = max(step, math.ceil(max(totals, default=0) / step) * step)
    plot_left, plot_right = float(_LEFT), float(WIDTH - _RIGHT)
    axis_y, plot_top = float(HEIGHT - _BOTTOM), float(_TOP)
    scale = (axis_y - plot_top) / top_value
    slot = (plot_right - plot_left) / max(len(columns), 1)
    bar_width = slot * 0.7
    placed: list[PlacedColumn] = []
    for index, column in enumerate(columns):
        x = plot_left + index * slot + (slot - bar_width) / 2
        base = axis_y
        rects: list[Rect] = []
        for segment in column.segments:
            height = segment.value * scale
            if height > 0:
                top = _r(base - height)
                rects.append(Rect(_r(x), top, _r(bar_width), _r(height), segment.fill))
            base -= height
        middle = _r(x + bar_width / 2)
        placed.append(PlacedColumn(column.title, column.label, middle, tuple(rects)))
    gridlines = tuple(
        Gridline(_r(axis_y - value * scale), number.format(value))
        for value in range(0, top_value + 1, step)
    )
    return Chart(
        width=WIDTH, height=HEIGHT, plot_left=plot_left, plot_right=plot_right, axis_y=axis_y,
        label_y=_r(axis_y + 18), gridlines=gridlines, columns=tuple(placed),
        fills=frozenset(
            segment.fill for column in columns for segment in column.segments if segment.value
        ),
    )  # fmt: skip


def _r(value: float) -> float:
    return round(value, 1)
