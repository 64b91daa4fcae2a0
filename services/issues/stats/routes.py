"""Statistics routes: the rectification figures (整改率 and the rest) of a region and period, grouped."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BeforeValidator

from services.issues.deps import ReadSessionDep
from services.issues.regions.models import Level
from services.issues.stats import rules, service
from services.issues.stats.rules import GroupBy
from services.issues.stats.schemas import RectificationStats
from services.kit.auth import Caller, require_scope
from services.kit.db import utcnow
from services.kit.errors import problem_docs
from services.kit.fields import Moment
from services.kit.identity import Scope
from services.kit.pagination import PageParams, page_params

router = APIRouter(tags=["issues"])

StatsReaderDep = Annotated[Caller, Depends(require_scope(Scope.issues_read))]
# A county's villages (up to ~1,500 in the largest) in one answer: each row is one index range of the window.
STATS_MAX_LIMIT = 2000
StatsPageDep = Annotated[PageParams, Depends(page_params(STATS_MAX_LIMIT))]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_only(value: Any) -> Any:
    """A bare `2026-03-01` (pydantic alone would also take a number, or a date-time at midnight)."""
    if isinstance(value, date) or (isinstance(value, str) and _DATE.fullmatch(value)):
        return value
    raise ValueError("a date (2026-03-01) or an RFC 3339 date-time with an offset")


Day = Annotated[date, BeforeValidator(_date_only)]
Edge = Moment | Day  # a moment, or a day: its 00:00 in Asia/Shanghai

DEFINITIONS = """\
Counts the issues **reported in the window [`from`, `to`)** in the subtree of `region` (the caller's own
region by default; a region outside the caller's subtree answers 404 `region_not_found`), grouped, with a
`total` row over the whole region and window (on the first page; null on the pages after it, as it does
not change). By each group:

- `found`: reported in the window and not rejected. A rejected report (not a real problem, a duplicate,
  not the county's) is never counted as found or fixed: it is counted in `rejected` alone.
- `fixed`: closed (销号) among the found. `rectification_rate` (整改率) = fixed / found.
- `open`: neither closed nor rejected, so `found = fixed + open`; `overdue`: open and past its deadline now.
- `closed_on_time`: fixed no later than its (possibly extended) deadline; a fixed issue without a deadline
  is on time. `on_time_rate` = closed_on_time / fixed.
- `reworked`: fixed after being returned (退回重整) at least once. `rework_rate` = reworked / **fixed**: the
  share of fixes that needed rework (issues still open after a return are not in it yet).
- `extended`: found with at least one approved extension (延期). `extension_rate` = extended / found.
- `mean_days_to_close`, `median_days_to_close`: of closed_at − reported_at in days (fractional), over the
  fixed; the median is exact (the mean of the two middle values of an even count).

Every rate is a fraction in [0, 1], and null when its denominator is 0 (so is the mean and the median when
nothing was fixed).

`group_by`:

- `child` (default): one row per direct child region of `region`, each counting its whole subtree, in
  path order, including children with no issues. `depth=N` makes the rows the regions N levels below
  instead, `level=village` (for example) every region of that level in the subtree: all of a county's
  villages in one answer (`limit` up to 2,000), whether a town has 管区 or not. Issues filed on `region` itself (a village's
  own issues when its grids are the rows) count in the total only.
- `category`: one row per category with issues reported in the window.
- `source`: one row per source (all seven, zeros included).
- `month`: one row per month of the window (Asia/Shanghai; all of them, zeros included; at most 120,
  else 422 `window_too_long`), by the month the issue was reported in.

Rows come in cursor pages (`limit` ≤ 2,000 — a county's villages in one call —, `cursor` = `next_cursor`),
ordered by path (regions) or key.
`from` defaults to 1 January of this year and `to` to now; a date without a time means 00:00 in
Asia/Shanghai. `from` not before `to` is 422 `empty_window`; `depth` or `level` with another grouping, or
both at once, 422 `grouping_option_not_allowed`.

For staff and integrations with `issues:read`: a citizen's token answers 403 `role_not_allowed`.
"""


def _moment(value: datetime | date | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return rules.local_midnight(value)


@dataclass(frozen=True)
class Window:
    """The region and period a statistics query counts, with the region grouping's options."""

    region: str | None
    start: datetime
    end: datetime
    depth: int | None
    level: Level | None

    def query(self, group_by: GroupBy) -> service.StatsQuery:
        return service.StatsQuery(
            region=self.region,
            start=self.start,
            end=self.end,
            group_by=group_by,
            depth=self.depth,
            level=self.level,
        )


async def _window(
    region: Annotated[
        str | None, Query(max_length=32, description="The region counted (default: the caller's).")
    ] = None,
    from_: Annotated[
        Edge | None,
        Query(alias="from", description="Start, inclusive (default: 1 January of this year, Asia/Shanghai)."),
    ] = None,
    to: Annotated[Edge | None, Query(description="End, exclusive (default: now).")] = None,
    depth: Annotated[
        int | None, Query(ge=1, le=6, description="Regions grouped: those this many levels below.")
    ] = None,
    level: Annotated[
        Level | None, Query(description="Regions grouped: every region of this level in the subtree.")
    ] = None,
) -> Window:
    now = utcnow()
    return Window(region, _moment(from_) or rules.start_of_year(now), _moment(to) or now, depth, level)


# The statistics' and the figures feed's common parameters (the feed: services/issues/feed/routes.py).
WindowDep = Annotated[Window, Depends(_window)]


@router.get(
    "/v1/stats/rectification",
    response_model=RectificationStats,
    summary="Rectification statistics (整改率) of a region and period",
    description=DEFINITIONS,
    responses=problem_docs(403),
)
async def rectification_stats(
    session: ReadSessionDep,
    caller: StatsReaderDep,
    page: StatsPageDep,
    window: WindowDep,
    group_by: Annotated[
        GroupBy, Query(description="`child`, `category`, `source` or `month`.")
    ] = GroupBy.child,
) -> RectificationStats:
    return await service.rectification(session, caller, window.query(group_by), page)
