"""A year's default schedule, from the kept `chinesecalendar` library (the State Council's yearly notices).

Each release knows the years whose schedule was published before it (1.11.0: 2004 to 2026; next year's
schedule usually comes out in November, and a release follows: `uv lock --upgrade-package chinesecalendar`).
For any other year the library raises, and the default is weekends only (`CalendarSource.weekends`) until
the county office puts the year's schedule in.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from importlib.metadata import version

import chinese_calendar

from services.issues.calendar.rules import CalendarSource, NamedDay, YearSchedule

LIBRARY = f"chinesecalendar {version('chinesecalendar')}"

# The library names holidays in English (its Chinese names are short: 清明, 中秋); the API names them as
# the State Council's notices do.
_NOTICE_NAMES = {
    "tomb_sweeping_day": "清明节",
    "dragon_boat_festival": "端午节",
    "mid_autumn_festival": "中秋节",
}
_CHINESE_NAMES: dict[str, str] = {
    holiday.value: _NOTICE_NAMES.get(holiday.name, holiday.chinese) for holiday in chinese_calendar.Holiday
}


def _chinese(name: str) -> str:
    return _CHINESE_NAMES.get(name, name)


@lru_cache(maxsize=256)
def default_schedule(year: int) -> YearSchedule:
    """The library's schedule of `year`: every named holiday day (weekends within a holiday period too) and
    every make-up working day; weekends only for a year the library does not know."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    try:
        chinese_calendar.is_workday(first)
        chinese_calendar.is_workday(last)
    except NotImplementedError:
        return YearSchedule(year=year, source=CalendarSource.weekends)
    holidays: list[NamedDay] = []
    makeup_days: list[NamedDay] = []
    day = first
    while day <= last:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if name is not None and on_holiday:
            holidays.append(NamedDay(day, _chinese(name)))
        elif name is not None and day.weekday() >= 5:  # a weekend day worked for a holiday: 调休
            makeup_days.append(NamedDay(day, f"{_chinese(name)}调休上班"))
        day += timedelta(days=1)
    return YearSchedule(
        year=year, source=CalendarSource.library, holidays=tuple(holidays), makeup_days=tuple(makeup_days)
    )
