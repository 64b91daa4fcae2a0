"""The statistics' pure core: the definitions worked by hand, then properties over random issues."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.issues.cases.rules import Status
from services.issues.stats.rules import (
    Counts,
    IssueFacts,
    figures,
    local_midnight,
    median,
    month_count,
    month_key,
    month_name,
    months_between,
    share,
    start_of_year,
    tally,
    total,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)


def facts(
    status: Status,
    *,
    days: float | None = None,
    deadline_days: float | None = 7,
    rework: int = 0,
    extensions: int = 0,
) -> IssueFacts:
    return IssueFacts(
        status=status,
        reported_at=T0,
        closed_at=T0 + timedelta(days=days) if days is not None else None,
        deadline=T0 + timedelta(days=deadline_days) if deadline_days is not None else None,
        rework_count=rework,
        extension_count=extensions,
    )


# ---- worked examples ----


def test_the_seeds_1017_fixed_of_1104_found_is_92_1_percent() -> None:
    counts = Counts(found=1104, fixed=1017, open=87)
    rate = figures(counts, None).rectification_rate
    assert rate == 1017 / 1104 and round(rate * 100, 1) == 92.1


def test_each_figure_counts_what_its_definition_says() -> None:
    issues = [
        facts(Status.closed, days=1),  # on time
        facts(Status.closed, days=2, rework=1),  # on time, reworked
        facts(Status.closed, days=4, extensions=1),  # on time, extended
        facts(Status.closed, days=10),  # late: the deadline was 7 days
        facts(Status.closed, days=3, deadline_days=None),  # no deadline: on time
        facts(Status.assigned, deadline_days=100, extensions=2),  # open, not overdue, extended
        facts(Status.submitted, deadline_days=1),  # open and overdue
        facts(Status.reported, deadline_days=None),  # open, no deadline: never overdue
        facts(Status.rejected, extensions=1),  # counted as rejected only
        facts(Status.assigned, rework=3),  # returned, still open: not in the rework rate yet
    ]
    counts = tally(issues, NOW)
    assert counts == Counts(
        found=9,
        fixed=5,
        rejected=1,
        open=4,
        overdue=2,  # the submitted one and the reworked one still assigned (deadline 7 days, long past)
        closed_on_time=4,
        reworked=1,
        extended=2,
        days_to_close=pytest.approx(20.0),
    )
    shown = figures(counts, median([1, 2, 4, 10, 3]))
    assert shown.rectification_rate == 5 / 9
    assert shown.on_time_rate == 4 / 5
    assert shown.rework_rate == 1 / 5
    assert shown.extension_rate == 2 / 9
    assert shown.mean_days_to_close == pytest.approx(4.0)
    assert shown.median_days_to_close == 3


def test_nothing_found_gives_no_rates_rather_than_zero() -> None:
    shown = figures(Counts(rejected=3), None)
    assert shown.rectification_rate is None and shown.extension_rate is None
    assert shown.on_time_rate is None and shown.rework_rate is None
    assert shown.mean_days_to_close is None and shown.median_days_to_close is None
    found_none_fixed = figures(Counts(found=4, open=4), None)
    assert found_none_fixed.rectification_rate == 0 and found_none_fixed.on_time_rate is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), ([5.0], 5.0), ([3.0, 1.0], 2.0), ([9.0, 1.0, 4.0], 4.0), ([1.0, 2.0, 3.0, 100.0], 2.5)],
)
def test_the_median_is_the_middle_or_the_mean_of_the_two_middles(
    values: list[float], expected: float | None
) -> None:
    assert median(values) == expected


def test_months_and_dates_are_read_in_beijing_time() -> None:
    # 16:00 UTC on 31 January is midnight on 1 February in Beijing.
    assert month_key(datetime(2026, 1, 31, 15, 59, tzinfo=UTC)) == "2026-01"
    assert month_key(datetime(2026, 1, 31, 16, 0, tzinfo=UTC)) == "2026-02"
    assert local_midnight(date(2026, 3, 1)) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert start_of_year(datetime(2025, 12, 31, 16, 30, tzinfo=UTC)) == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert months_between(local_midnight(date(2025, 11, 1)), local_midnight(date(2026, 2, 1))) == [
        "2025-11",
        "2025-12",
        "2026-01",
    ]
    assert months_between(T0, T0) == [] and month_name("2026-03") == "2026年3月"


# ---- properties ----

statuses = st.sampled_from(list(Status))
moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))


@st.composite
def issue_facts(draw: st.DrawFn) -> IssueFacts:
    status = draw(statuses)
    reported = draw(moments)
    closed = (
        reported + draw(st.timedeltas(timedelta(0), timedelta(days=400))) if status is Status.closed else None
    )
    deadline = draw(
        st.none() | st.builds(lambda d: reported + d, st.timedeltas(timedelta(0), timedelta(days=60)))
    )
    return IssueFacts(
        status=status,
        reported_at=reported,
        closed_at=closed,
        deadline=deadline,
        rework_count=draw(st.integers(0, 5)),
        extension_count=draw(st.integers(0, 3)),
    )


@given(st.lists(issue_facts(), max_size=60), moments)
def test_rates_are_fractions_and_the_counts_hold_together(issues: list[IssueFacts], now: datetime) -> None:
    counts = tally(issues, now)
    assert counts.found + counts.rejected == len(issues)
    assert counts.fixed <= counts.found and counts.found == counts.fixed + counts.open
    assert counts.overdue <= counts.open
    assert counts.closed_on_time <= counts.fixed and counts.reworked <= counts.fixed
    assert counts.extended <= counts.found
    closed_days = [(i.closed_at - i.reported_at).total_seconds() / 86400 for i in issues if i.closed_at]
    shown = figures(counts, median(closed_days))
    for rate in (shown.rectification_rate, shown.on_time_rate, shown.rework_rate, shown.extension_rate):
        assert rate is None or 0 <= rate <= 1
    assert (shown.rectification_rate is None) == (counts.found == 0)
    if counts.fixed:
        assert shown.mean_days_to_close is not None and shown.median_days_to_close is not None
        assert min(closed_days) - 1e-9 <= shown.mean_days_to_close <= max(closed_days) + 1e-9
        assert min(closed_days) <= shown.median_days_to_close <= max(closed_days)


@given(st.lists(st.tuples(st.integers(0, 4), issue_facts()), max_size=60), moments)
def test_the_groups_counts_add_up_to_the_total(grouped: list[tuple[int, IssueFacts]], now: datetime) -> None:
    everything = tally([issue for _, issue in grouped], now)
    groups = [tally([issue for g, issue in grouped if g == group], now) for group in range(5)]
    summed = total(groups)
    assert summed.days_to_close == pytest.approx(everything.days_to_close)
    assert summed == replace(everything, days_to_close=summed.days_to_close)


@given(st.lists(st.floats(0, 1000, allow_nan=False), max_size=50))
def test_the_median_agrees_with_the_standard_library(values: list[float]) -> None:
    expected = statistics.median(values) if values else None
    assert median(values) == (pytest.approx(expected) if expected is not None else None)


@given(st.integers(0, 10), st.integers(1, 10))
def test_share_is_none_only_without_a_whole(part: int, whole: int) -> None:
    part = min(part, whole)
    assert share(part, whole) == part / whole and share(part, 0) is None


@given(moments, st.timedeltas(timedelta(seconds=1), timedelta(days=3650)))
def test_a_window_has_every_month_it_touches_once_and_in_order(start: datetime, length: timedelta) -> None:
    end = start + length
    keys = months_between(start, end)
    assert keys == sorted(set(keys))
    assert keys[0] == month_key(start) and keys[-1] == month_key(end - timedelta(microseconds=1))
    assert len(keys) == month_count(start, end)
    assert all(local_midnight(date(int(k[:4]), int(k[5:]), 1)) < end for k in keys)
