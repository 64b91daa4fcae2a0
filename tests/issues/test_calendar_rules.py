"""The working-day calendar's pure core: working days, deadlines in working days, the share of time used and
the traffic light — worked examples from the 2026 schedule, then properties over random calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.issues.calendar.defaults import default_schedule
from services.issues.calendar.rules import (
    MAX_YEAR,
    MIN_YEAR,
    SHANGHAI,
    CalendarSource,
    Light,
    NamedDay,
    WorkingCalendar,
    YearNotCovered,
    YearSchedule,
    beijing_date,
    deadline_after,
    light,
    moment_of_share,
    schedule_problems,
    working_time_used,
    years_between,
)

CAL_2026 = WorkingCalendar.of([default_schedule(2025), default_schedule(2026), default_schedule(2027)])
END = time(23, 59, 59, 999999)


def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def end_of(day: date) -> datetime:
    return datetime.combine(day, END, tzinfo=SHANGHAI)


# ---- the library's schedule ----


def test_the_library_knows_2025_and_2026_and_not_2027() -> None:
    assert default_schedule(2025).source is CalendarSource.library
    assert default_schedule(2026).source is CalendarSource.library
    unknown = default_schedule(2027)
    assert (unknown.source, unknown.holidays, unknown.makeup_days) == (CalendarSource.weekends, (), ())


def test_the_2026_schedule_as_the_state_council_published_it() -> None:
    schedule = default_schedule(2026)
    off = {d.date for d in schedule.holidays}
    assert {date(2026, 10, d) for d in range(1, 8)} <= off
    assert {date(2026, 2, d) for d in range(15, 24)} <= off
    assert {d.date for d in schedule.makeup_days} == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
    assert all(d.date.weekday() >= 5 for d in schedule.makeup_days)
    assert not off & {d.date for d in schedule.makeup_days}


@pytest.mark.parametrize("year", [2000, 2003, 2027, 2100])
def test_years_the_library_does_not_know_are_weekends_only(year: int) -> None:
    assert default_schedule(year) == YearSchedule(year=year, source=CalendarSource.weekends)


# ---- worked examples ----


def test_friday_afternoon_with_one_working_day_is_due_at_the_end_of_monday() -> None:
    due = deadline_after(beijing(2026, 11, 20, 15, 0), 1, CAL_2026)
    assert due == end_of(date(2026, 11, 23))
    assert due.tzinfo is UTC
    assert due == datetime(2026, 11, 23, 15, 59, 59, 999999, tzinfo=UTC)


def test_national_day_week_is_skipped_and_the_makeup_saturday_counts() -> None:
    start = beijing(2026, 9, 30, 10, 0)
    due = [deadline_after(start, n, CAL_2026).astimezone(SHANGHAI).date() for n in range(1, 6)]
    assert due == [
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
        date(2026, 10, 12),
        date(2026, 10, 13),
    ]


def test_a_report_late_in_the_beijing_evening_counts_from_its_beijing_day() -> None:
    # 23:30 in Beijing on Friday is 15:30 UTC the same day; 00:30 on Saturday is still Friday in UTC.
    assert deadline_after(beijing(2026, 11, 20, 23, 30), 1, CAL_2026) == end_of(date(2026, 11, 23))
    saturday = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # 00:30 Saturday in Beijing
    assert deadline_after(saturday, 1, CAL_2026) == end_of(date(2026, 11, 23))


def test_zero_working_days_is_the_end_of_the_day_itself() -> None:
    assert deadline_after(beijing(2026, 10, 3, 9, 0), 0, CAL_2026) == end_of(date(2026, 10, 3))


def test_a_deadline_running_past_the_calendar_asks_for_the_next_year() -> None:
    only_2026 = WorkingCalendar.of([default_schedule(2026)])
    with pytest.raises(YearNotCovered) as caught:
        deadline_after(beijing(2026, 12, 30, 9, 0), 5, only_2026)
    assert caught.value.year == 2027


def test_naive_datetimes_and_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        deadline_after(datetime(2026, 11, 20, 15, 0), 1, CAL_2026)
    with pytest.raises(ValueError, match="negative"):
        deadline_after(beijing(2026, 11, 20, 15, 0), -1, CAL_2026)
    with pytest.raises(ValueError, match="naive"):
        working_time_used(beijing(2026, 1, 5), beijing(2026, 1, 9), datetime(2026, 1, 6), CAL_2026)


def test_time_used_over_a_working_week() -> None:
    start = beijing(2026, 11, 23, 12, 0)  # Monday noon
    due = deadline_after(start, 4, CAL_2026)  # the end of Friday: 4.5 working days allowed
    assert working_time_used(start, due, start, CAL_2026) == 0.0
    assert working_time_used(start, due, beijing(2026, 11, 24, 0, 0), CAL_2026) == pytest.approx(0.5 / 4.5)
    assert working_time_used(start, due, beijing(2026, 11, 27, 0, 0), CAL_2026) == pytest.approx(3.5 / 4.5)
    assert light(working_time_used(start, due, beijing(2026, 11, 27, 0, 0), CAL_2026)) is Light.green
    assert light(working_time_used(start, due, beijing(2026, 11, 27, 12, 0), CAL_2026)) is Light.yellow
    assert working_time_used(start, due, due, CAL_2026) == 1.0
    assert light(working_time_used(start, due, due, CAL_2026)) is Light.yellow


def test_weekends_and_holidays_stop_the_clock_until_the_deadline() -> None:
    start = beijing(2026, 9, 30, 0, 0)  # Wednesday, the last working day before National Day
    due = deadline_after(start, 1, CAL_2026)  # the end of Thursday 8 October
    on_holiday = [working_time_used(start, due, beijing(2026, 10, d, 12), CAL_2026) for d in range(1, 8)]
    assert on_holiday == [pytest.approx(0.5)] * 7


def test_past_the_deadline_is_red_even_over_a_weekend() -> None:
    start = beijing(2026, 11, 23, 9, 0)
    due = deadline_after(start, 4, CAL_2026)  # the end of Friday 27 November
    saturday = beijing(2026, 11, 28, 10, 0)
    share = working_time_used(start, due, saturday, CAL_2026)
    assert share > 1.0
    assert light(share) is Light.red
    assert working_time_used(start, due, due + timedelta(microseconds=1), CAL_2026) > 1.0


def test_a_deadline_set_on_a_holiday_by_hand_measures_by_the_clock() -> None:
    start = beijing(2026, 10, 2, 8, 0)
    due = beijing(2026, 10, 2, 18, 0)  # no working time between them
    assert working_time_used(start, due, beijing(2026, 10, 2, 13, 0), CAL_2026) == pytest.approx(0.5)
    assert working_time_used(start, due, beijing(2026, 10, 2, 23, 0), CAL_2026) == pytest.approx(1.5)


def test_a_deadline_not_after_the_start_leaves_nothing_to_use() -> None:
    start = beijing(2026, 11, 23, 9, 0)
    assert working_time_used(start, start, start, CAL_2026) == 1.0
    assert working_time_used(start, start, start + timedelta(days=1), CAL_2026) == pytest.approx(2.0)
    earlier = start - timedelta(hours=1)
    assert working_time_used(start, earlier, start, CAL_2026) > 1.0


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        (0.0, Light.green),
        (0.5, Light.green),
        (0.7999999, Light.green),
        (0.8, Light.yellow),
        (0.95, Light.yellow),
        (1.0, Light.yellow),
        (1.0000001, Light.red),
        (3.0, Light.red),
    ],
)
def test_the_traffic_light(share: float, expected: Light) -> None:
    assert light(share) is expected
    assert light(share) == expected.value


def test_the_light_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="number"):
        light(float("nan"))


def test_years_between_is_in_beijing_time() -> None:
    new_year = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 January 2027 in Beijing
    assert years_between(datetime(2026, 6, 1, tzinfo=UTC), new_year) == range(2026, 2028)
    assert beijing_date(new_year) == date(2027, 1, 1)


def test_a_calendar_refuses_days_it_does_not_cover_and_days_both_ways() -> None:
    with pytest.raises(ValueError, match="both"):
        WorkingCalendar(
            years=frozenset({2026}),
            holidays=frozenset({date(2026, 1, 3)}),
            makeup_days=frozenset({date(2026, 1, 3)}),
        )
    with pytest.raises(ValueError, match="not covered"):
        WorkingCalendar(years=frozenset({2026}), holidays=frozenset({date(2027, 1, 1)}))
    with pytest.raises(YearNotCovered):
        CAL_2026.is_working_day(date(2028, 1, 3))
    with pytest.raises(YearNotCovered):
        CAL_2026.working_days_between(date(2027, 12, 1), date(2028, 1, 3))


# ---- the office's schedule ----


def test_a_good_schedule_has_no_problems() -> None:
    assert schedule_problems(2027, [date(2027, 1, 1), date(2027, 2, 6)], [date(2027, 2, 20)]) == []


def test_schedule_problems_name_the_day_and_the_reason() -> None:
    problems = schedule_problems(
        2027,
        [date(2027, 1, 1), date(2027, 1, 1), date(2026, 12, 31)],
        [date(2027, 1, 1), date(2027, 1, 4)],
    )
    assert [(p.field, p.type) for p in problems] == [
        ("body.holidays.1.date", "date_repeated"),
        ("body.holidays.2.date", "date_outside_year"),
        ("body.makeup_days.0.date", "date_both_holiday_and_makeup"),
        ("body.makeup_days.0.date", "makeup_day_not_weekend"),
        ("body.makeup_days.1.date", "makeup_day_not_weekend"),
    ]


# ---- properties over random calendars ----

YEARS = frozenset(range(2024, 2033))
days_2024_2027 = st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    """Up to 40 holidays and 15 make-up weekend days in 2024–2027, covered through 2032."""
    holidays = draw(st.frozensets(days_2024_2027, max_size=40))
    weekends = st.frozensets(days_2024_2027.filter(lambda d: d.weekday() >= 5), max_size=15)
    makeups = draw(weekends) - holidays
    return WorkingCalendar(years=YEARS, holidays=holidays, makeup_days=makeups)


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
counts = st.integers(min_value=0, max_value=365)


def brute_working_days(calendar: WorkingCalendar, first: date, last: date) -> int:
    return sum(calendar.is_working_day(first + timedelta(n)) for n in range((last - first).days + 1))


@given(calendars(), days_2024_2027)
def test_a_working_day_is_a_makeup_day_or_a_weekday_off_no_holiday(
    calendar: WorkingCalendar, day: date
) -> None:
    expected = day in calendar.makeup_days or (day.weekday() < 5 and day not in calendar.holidays)
    assert calendar.is_working_day(day) is expected


@given(calendars(), days_2024_2027, st.integers(min_value=-3, max_value=800))
def test_counting_working_days_agrees_with_asking_day_by_day(
    calendar: WorkingCalendar, first: date, span: int
) -> None:
    last = first + timedelta(days=span)
    assert calendar.working_days_between(first, last) == (
        brute_working_days(calendar, first, last) if span >= 0 else 0
    )


@given(calendars(), moments, counts)
def test_a_deadline_is_the_end_of_the_nth_working_day_after_the_start(
    calendar: WorkingCalendar, start: datetime, n: int
) -> None:
    due = deadline_after(start, n, calendar)
    local = due.astimezone(SHANGHAI)
    assert due.tzinfo is UTC
    assert local.time() == END
    start_day = beijing_date(start)
    assert calendar.working_days_between(start_day + timedelta(1), local.date()) == n
    if n > 0:
        assert calendar.is_working_day(local.date())
    else:
        assert local.date() == start_day
    assert due > start


@given(calendars(), moments, st.integers(min_value=0, max_value=364))
def test_one_more_working_day_is_a_later_deadline(calendar: WorkingCalendar, start: datetime, n: int) -> None:
    assert deadline_after(start, n + 1, calendar) > deadline_after(start, n, calendar)


@given(
    calendars(),
    moments,
    st.integers(min_value=1, max_value=60),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=120)),
)
def test_time_used_runs_from_zero_to_one_and_past_it_exactly_after_the_deadline(
    calendar: WorkingCalendar, start: datetime, n: int, elapsed: timedelta
) -> None:
    due = deadline_after(start, n, calendar)
    now = start + elapsed
    share = working_time_used(start, due, now, calendar)
    if now <= due:
        assert 0.0 <= share <= 1.0
        assert light(share) is not Light.red
    else:
        assert share > 1.0
        assert light(share) is Light.red
    assert working_time_used(start, due, start, calendar) == 0.0
    assert working_time_used(start, due, due, calendar) == 1.0


@given(
    calendars(),
    moments,
    st.integers(min_value=0, max_value=30),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)),
)
def test_time_used_never_goes_back(
    calendar: WorkingCalendar, start: datetime, n: int, first: timedelta, more: timedelta
) -> None:
    due = deadline_after(start, n, calendar)
    earlier = working_time_used(start, due, start + first, calendar)
    later = working_time_used(start, due, start + first + more, calendar)
    assert later >= earlier


@given(
    calendars(),
    moments,
    st.timedeltas(min_value=-timedelta(days=3), max_value=timedelta(days=40)),
    st.timedeltas(min_value=-timedelta(days=3), max_value=timedelta(days=60)),
)
def test_time_used_of_any_deadline_is_above_one_exactly_when_past_it(
    calendar: WorkingCalendar, start: datetime, to_deadline: timedelta, to_now: timedelta
) -> None:
    # Deadlines set by hand: any moment, on holidays, even before the start.
    due, now = start + to_deadline, start + to_now
    share = working_time_used(start, due, now, calendar)
    assert (share > 1.0) is (now > due)
    assert share >= 0.0


@given(
    calendars(),
    moments,
    st.timedeltas(min_value=-timedelta(days=3), max_value=timedelta(days=60)),
    st.sampled_from([0.8, 0.5, 1.0, 0.01]),
)
def test_the_moment_of_a_share_is_the_first_microsecond_that_reaches_it(
    calendar: WorkingCalendar, start: datetime, to_deadline: timedelta, share: float
) -> None:
    # The yellow light's moment (80 %) is stored with every deadline: walked, not searched for.
    due = start + to_deadline
    moment = moment_of_share(start, due, share, calendar)
    if due <= start:
        assert moment == due
        return
    assert start < moment <= due
    assert working_time_used(start, due, moment, calendar) >= share
    assert working_time_used(start, due, moment - timedelta(microseconds=1), calendar) < share


def test_the_yellow_moment_of_a_working_week() -> None:
    # Monday 00:00 to Friday 24:00 (five working days): 80 % is used at Friday 00:00.
    start, due = beijing(2026, 11, 2), beijing(2026, 11, 7)
    assert moment_of_share(start, due, 0.8, CAL_2026) == beijing(2026, 11, 6)
    # Over a weekend the clock stands: from Thursday noon to Tuesday noon, 3 working days (72 hours); 80 %
    # is 57.6 hours: Thursday's 12 and Friday's 24, then 21.6 on Monday.
    assert moment_of_share(beijing(2026, 11, 5, 12), beijing(2026, 11, 10, 12), 0.8, CAL_2026) == beijing(
        2026, 11, 9, 21, 36
    )


@given(calendars(), moments, st.integers(min_value=1, max_value=30))
def test_on_a_day_off_before_the_deadline_the_share_stands_still(
    calendar: WorkingCalendar, start: datetime, n: int
) -> None:
    due = deadline_after(start, n, calendar)
    day = beijing_date(start) + timedelta(days=1)
    assume(not calendar.is_working_day(day))
    morning = datetime.combine(day, time(1), tzinfo=SHANGHAI)
    evening = datetime.combine(day, time(23), tzinfo=SHANGHAI)
    assume(evening <= due)
    assert working_time_used(start, due, morning, calendar) == working_time_used(
        start, due, evening, calendar
    )


@given(st.floats(allow_nan=False))
def test_the_light_follows_the_share(share: float) -> None:
    expected = Light.green if share < 0.8 else Light.yellow if share <= 1.0 else Light.red
    assert light(share) is expected


@given(
    st.integers(min_value=MIN_YEAR, max_value=MAX_YEAR),
    st.lists(st.dates(min_value=date(1999, 12, 1), max_value=date(2101, 1, 31)), max_size=8),
    st.lists(st.dates(min_value=date(1999, 12, 1), max_value=date(2101, 1, 31)), max_size=8),
)
def test_a_schedule_without_problems_makes_a_calendar(
    year: int, holidays: list[date], makeups: list[date]
) -> None:
    problems = schedule_problems(year, holidays, makeups)
    outside = any(d.year != year for d in holidays + makeups)
    repeated = len(set(holidays)) != len(holidays) or len(set(makeups)) != len(makeups)
    clash = bool(set(holidays) & set(makeups))
    weekday_makeup = any(d.weekday() < 5 for d in makeups)
    assert (problems == []) is not (outside or repeated or clash or weekday_makeup)
    if not problems:
        schedule = YearSchedule(
            year=year,
            source=CalendarSource.office,
            holidays=tuple(NamedDay(d, "节日") for d in holidays),
            makeup_days=tuple(NamedDay(d, "调休上班") for d in makeups),
        )
        calendar = WorkingCalendar.of([schedule])
        assert all(not calendar.is_working_day(d) for d in holidays)
        assert all(calendar.is_working_day(d) for d in makeups)


def _shanghai_zone() -> ZoneInfo | None:
    try:
        return ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:
        return None


@pytest.mark.skipif(_shanghai_zone() is None, reason="no time-zone database on this host")
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)))
def test_the_fixed_offset_is_asia_shanghai_for_the_calendars_years(moment: datetime) -> None:
    zone = _shanghai_zone()
    assert moment.astimezone(SHANGHAI).replace(tzinfo=None) == moment.astimezone(zone).replace(tzinfo=None)
