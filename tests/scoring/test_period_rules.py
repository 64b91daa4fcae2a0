"""Period arithmetic: the three forms parse and print back, neighbours are one step apart, containment
follows the calendar, and a month's two inspection rounds cover it exactly in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.periods import (
    SHANGHAI,
    HalfMonth,
    Period,
    PeriodKind,
    inspection_windows,
    month,
    parse_period,
    period_of,
    quarter,
    year,
)

kinds = st.sampled_from(list(PeriodKind))


@st.composite
def periods(draw: st.DrawFn, kind: PeriodKind | None = None) -> Period:
    kind = kind or draw(kinds)
    return Period(kind, draw(st.integers(2005, 2995)), draw(st.integers(1, 12 // kind.months)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11", month(2026, 11)),
        ("2026-01", month(2026, 1)),
        ("2026-Q4", quarter(2026, 4)),
        ("2026", year(2026)),
    ],
)
def test_the_three_forms_parse(text: str, expected: Period) -> None:
    assert parse_period(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-1",
        "2026-13",
        "2026-00",
        "2026-q4",
        "2026-Q5",
        "2026-Q0",
        "26-11",
        "2026-11 ",
        "2026/11",
        "",
        "1999",
    ],
)
def test_other_forms_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is the parser's
        parse_period(text)


@given(periods())
def test_a_period_prints_as_it_parses(period: Period) -> None:
    assert parse_period(period.code) == period


@given(periods())
def test_previous_and_next_are_neighbours(period: Period) -> None:
    before = period.previous()
    assert before.kind is period.kind
    assert before.end == period.start  # no gap, no overlap
    assert before.next() == period
    assert before < period
    assert period.previous(3) == before.previous().previous()


def test_previous_crosses_the_year() -> None:
    assert month(2026, 1).previous() == month(2025, 12)
    assert quarter(2026, 1).previous() == quarter(2025, 4)
    assert year(2026).previous() == year(2025)


@given(periods(), st.integers(0, 400))
def test_a_period_contains_its_days_and_its_months(period: Period, offset: int) -> None:
    day = period.start + timedelta(days=offset)
    assert period.contains(day) == (day < period.end)
    assert period_of(period.kind, period.start) == period
    months = period.months()
    assert len(months) == period.kind.months
    assert all(period.contains(m) for m in months)
    assert months[0].start == period.start and months[-1].end == period.end
    assert all(m.within(period.kind) == period for m in months)


def test_containment_between_kinds() -> None:
    assert year(2026).contains(quarter(2026, 4))
    assert quarter(2026, 4).contains(month(2026, 11))
    assert not quarter(2026, 4).contains(month(2026, 9))
    assert not month(2026, 11).contains(quarter(2026, 4))
    assert month(2026, 11).within(PeriodKind.year) == year(2026)


def test_moments_are_read_in_shanghai() -> None:
    # 2026-11-30 16:30 UTC is already 1 December in Shanghai.
    late = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    assert period_of(PeriodKind.month, late) == month(2026, 12)
    assert not month(2026, 11).contains(late)
    assert month(2026, 11).ends_at == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    with pytest.raises(ValueError, match="time zone"):
        month(2026, 11).contains(datetime(2026, 11, 3, 12, 0))  # a naive moment is refused


@given(periods(PeriodKind.month))
def test_the_two_inspection_rounds_cover_the_month(period: Period) -> None:
    first, second = inspection_windows(period)
    assert (first.half, second.half) == (HalfMonth.first, HalfMonth.second)
    assert first.start == period.start and first.end == second.start and second.end == period.end
    assert first.end.day == 16
    assert (first.end - first.start).days == 15


def test_inspection_round_bounds_and_labels() -> None:
    first, second = inspection_windows(month(2026, 2))
    assert first.label == "2026年2月上旬" and second.label == "2026年2月下旬"
    assert first.contains(date(2026, 2, 15)) and not first.contains(date(2026, 2, 16))
    assert second.contains(date(2026, 2, 28)) and second.end == date(2026, 3, 1)
    # 15 February 23:59 in Shanghai is still 上旬, although it is 16:00 UTC.
    assert first.contains(datetime(2026, 2, 15, 15, 59, tzinfo=UTC))
    assert second.contains(datetime(2026, 2, 15, 16, 0, tzinfo=UTC))
    assert second.starts_at == datetime(2026, 2, 16, tzinfo=SHANGHAI)
    with pytest.raises(ValueError, match="per month"):
        inspection_windows(quarter(2026, 1))


def test_periods_of_different_kinds_do_not_order() -> None:
    with pytest.raises(TypeError):
        _ = month(2026, 1) < year(2026)
