"""The server-side bar charts: pure geometry, checked for any numbers (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank.mypage.charts import Column, Fill, Segment, bar_chart, nice_step

counts = st.integers(min_value=0, max_value=200_000)


@given(st.integers(min_value=0, max_value=10**9))
def test_the_gridline_step_is_one_two_or_five_times_a_power_of_ten_and_covers_the_largest(
    largest: int,
) -> None:
    step = nice_step(largest)
    assert step * 5 >= largest
    power = 10 ** int(math.log10(step))
    assert step // power in {1, 2, 5}
    assert step % power == 0
    # Not needlessly coarse: the next smaller step would not have covered it.
    if largest > 5:
        smaller = {1: step // 2, 2: step // 2, 5: step * 2 // 5}[step // power]
        assert smaller * 5 < largest


@given(st.lists(st.lists(counts, min_size=0, max_size=3), min_size=1, max_size=31))
def test_bars_stand_on_the_axis_inside_the_plot_and_their_heights_are_their_values(
    stacks: list[list[int]],
) -> None:
    columns = [
        Column(label=str(n), title=str(sum(s)), segments=tuple(Segment(v) for v in s))
        for n, s in enumerate(stacks)
    ]
    chart = bar_chart(columns)
    top = chart.gridlines[-1]
    top_value = int(top.label.replace(",", ""))
    assert top_value >= max(sum(s) for s in stacks)
    scale = (chart.axis_y - top.y) / top_value
    for column, stack in zip(chart.columns, stacks, strict=True):
        drawn = [v for v in stack if v * scale > 0]
        assert len(column.rects) == len(drawn)
        base = chart.axis_y
        for rect, value in zip(column.rects, drawn, strict=True):
            assert chart.plot_left <= rect.x
            assert rect.x + rect.width <= chart.plot_right + 0.1
            assert rect.height == pytest.approx(value * scale, abs=0.1)
            assert rect.y + rect.height == pytest.approx(base, abs=0.2)  # stacked, no gap
            base = rect.y
        assert base >= top.y - 0.2  # never above the top gridline


def test_an_empty_chart_still_has_an_axis() -> None:
    chart = bar_chart([Column("1", "none", ())])
    assert [g.label for g in chart.gridlines] == ["0", "1"]
    assert chart.fills == frozenset()


def test_the_fills_in_use_are_named_for_the_legend_and_negative_counts_are_refused() -> None:
    chart = bar_chart([Column("a", "a", (Segment(2), Segment(1, Fill.HATCHED)))])
    assert chart.fills == {Fill.SOLID, Fill.HATCHED}
    with pytest.raises(ValueError, match="negative"):
        bar_chart([Column("a", "a", (Segment(-1),))])
