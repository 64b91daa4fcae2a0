"""What scoring reads from the issues service, and the only place it does: over HTTP with its own service
token (`svc-scoring`, client credentials), exactly as a third party would.

- the region tree below a scope (`GET /v1/regions/{code}`, `GET /v1/regions/{code}/subtree?level=…`);
- the issues found in a scope during a window, in bulk: `GET /v1/feed/issues`, exactly what the issues
  list shows for the same filters (region, statuses, reported_from/reported_to) as one NDJSON answer of a
  few columns each, with the region's path: one call for a round, never one per village;
- rectification figures per unit (`GET /v1/feed/rectification?level=…`: the rows of the statistics'
  `group_by=child`, all in one NDJSON answer) and the mean satisfaction rating (群众满意度, 1–5) of the issues closed with feedback in a window (the feed again).

Whatever goes wrong on the way (the issues service down, a 5xx, a timeout, an answer that is not what its
API documents) is one ServiceUnavailable (503 `issues_unavailable`, Retry-After): callers read everything
they need before they change anything, so a failed read changes nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import httpx

from services.kit.errors import BadGateway, GatewayTimeout, NotFound, ServiceUnavailable
from services.kit.identity import codes_in_path
from services.kit.peers import Peer
from services.scoring.levels import RegionLevel, levels_between
from services.scoring.rubrics.rules import Severity
from services.scoring.scores.rules import Finding

__all__ = [
    "PAGE",
    "FoundIssue",
    "IssuesFeed",
    "IssuesUnavailable",
    "Rectification",
    "RegionNode",
    "UnitIndex",
    "by_unit",
    "mean_ratings",
]

PAGE = 200  # the biggest page the issues service's lists give
# An issue counts as found once verified (立案): awaiting verification it may still be rejected.
FOUND_STATUSES = ("assigned", "submitted", "closed")


class IssuesUnavailable(ServiceUnavailable):
    code = "issues_unavailable"


class ScopeRegionNotFound(NotFound):
    code = "region_not_found"


def _unavailable(detail: str) -> IssuesUnavailable:
    return IssuesUnavailable(
        f"the issues service cannot be read now: {detail}; nothing was changed", headers={"Retry-After": "5"}
    )


@dataclass(frozen=True, slots=True)
class RegionNode:
    """A region as the issues service describes it."""

    code: str
    name: str
    level: str
    parent_code: str | None
    path: str


@dataclass(frozen=True, slots=True)
class FoundIssue:
    """An issue found in a scope, with what scoring needs of it."""

    code: str
    category: str
    severity: Severity
    status: str
    region: str  # where it was found: a village, or a grid below one
    region_path: str
    reported_at: datetime
    satisfaction: int | None = None

    def finding(self) -> Finding:
        return Finding(self.code, self.category, self.severity)


@dataclass(frozen=True, slots=True)
class Rectification:
    """A unit's rectification figures over a window: found, fixed and overdue counts; the rate is fixed /
    found (None when nothing was found)."""

    found: int
    fixed: int
    overdue: int

    @property
    def rate(self) -> Decimal | None:
        return None if self.found == 0 else Decimal(self.fixed) / Decimal(self.found)


class Located(Protocol):
    """A region with its code and path: a RegionNode, or a unit of a round's snapshot."""

    @property
    def code(self) -> str: ...

    @property
    def path(self) -> str: ...


class UnitIndex:
    """Which unit a region lies in: the unit itself, or the nearest unit above it on its path."""

    def __init__(self, units: Iterable[Located], others: Iterable[Located] = ()) -> None:
        self.units = {node.code: node for node in units}
        self._paths = {node.code: node.path for node in (*self.units.values(), *others)}

    def unit_of(self, region: str) -> str | None:
        path = self._paths.get(region)
        return None if path is None else self.unit_of_path(path)

    def unit_of_path(self, path: str) -> str | None:
        """The nearest unit on a region path (the region itself when it is one)."""
        for code in reversed(codes_in_path(path)):
            if code in self.units:
                return code
        return None


class IssuesFeed:
    """The issues service as scoring reads it."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.calls = 0  # how many requests this feed made (a round's close makes a handful)

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        self.calls += 1
        try:
            return await self.peer.request("GET", path, params=params)
        except (BadGateway, GatewayTimeout, ServiceUnavailable) as exc:
            raise _unavailable(str(exc)) from exc

    async def _json(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = await self._get(path, params)
        if response.status_code != 200:
            raise _unavailable(f"GET {path} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise _unavailable(f"GET {path} answered no JSON") from exc
        if not isinstance(body, dict):
            raise _unavailable(f"GET {path} answered no object")
        return body

    async def _pages(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
            body = await self._json(path, query)
            page = body.get("items")
            if not isinstance(page, list):
                raise _unavailable(f"GET {path} answered no items")
            items += page
            cursor = body.get("next_cursor")
            if not cursor:
                return items

    async def region(self, code: str) -> RegionNode:
        """One region; 404 `region_not_found` when the issues service has none of this code."""
        response = await self._get(f"/v1/regions/{code}")
        if response.status_code == 404:
            raise ScopeRegionNotFound(f"the issues service has no region {code!r}")
        if response.status_code != 200:
            raise _unavailable(f"GET /v1/regions/{code} answered {response.status_code}")
        try:
            return _region(response.json())
        except (KeyError, TypeError, ValueError) as exc:  # not the issues API's answer: try again later
            raise _unavailable(
                f"GET /v1/regions/{code} answered without a code, name, level or path"
            ) from exc

    async def subtree(self, code: str, level: str) -> list[RegionNode]:
        """Every region of `level` below `code`, in path order."""
        try:
            return [
                _region(item) for item in await self._pages(f"/v1/regions/{code}/subtree", {"level": level})
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise _unavailable("a region came without its code, name, level or path") from exc

    async def snapshot(self, root: RegionNode, unit_level: str) -> list[RegionNode]:
        """Every region from the level below `root` down to `unit_level`, in path order per level (one
        listing per level: a county's towns, 管区 and villages in about five calls)."""
        top, bottom = RegionLevel.of(root.level), RegionLevel.of(unit_level)
        if top is None or bottom is None:
            raise _unavailable(f"unknown region level {root.level!r}")
        nodes: list[RegionNode] = []
        for level in levels_between(top, bottom):
            nodes += await self.subtree(root.code, level.value)
        return nodes

    async def issues_found(
        self,
        region: str,
        start: datetime,
        end: datetime,
        *,
        statuses: Sequence[str] = FOUND_STATUSES,
        closed: tuple[datetime, datetime] | None = None,
    ) -> list[FoundIssue]:
        """The issues of these statuses reported in [start, end) anywhere under `region` (or, with `closed`,
        closed in that window instead): one call to the issues feed, whatever their number."""
        params: dict[str, Any] = {"region": region, "status": list(statuses)}
        if closed is None:
            params |= {"reported_from": start.isoformat(), "reported_to": end.isoformat()}
        else:
            params |= {"closed_from": closed[0].isoformat(), "closed_to": closed[1].isoformat()}
        response = await self._get("/v1/feed/issues", params)
        if response.status_code != 200:
            raise _unavailable(f"GET /v1/feed/issues answered {response.status_code}")
        try:
            return [_issue(body) for body in _ndjson(response.text)]
        except (KeyError, TypeError, ValueError) as exc:
            raise _unavailable("an issue came without its code, category, severity, region or time") from exc

    async def rectification(
        self, region: str, start: datetime, end: datetime, level: str
    ) -> dict[str, Rectification]:
        """Each `level` region's figures under `region` for the issues reported in [start, end): the rows of
        the rectification statistics, all in one NDJSON answer of `GET /v1/feed/rectification` (one call,
        a county's villages or a province's)."""
        params = {
            "region": region,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "level": level,
            "fields": ["found", "fixed", "overdue"],  # what scoring uses of a row: a province's stays small
        }
        response = await self._get("/v1/feed/rectification", params)
        if response.status_code != 200:
            raise _unavailable(f"GET /v1/feed/rectification answered {response.status_code}")
        try:
            return {
                str(row["key"]): Rectification(int(row["found"]), int(row["fixed"]), int(row["overdue"]))
                for row in _ndjson(response.text)
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise _unavailable("a statistics row came without its figures") from exc

    async def ratings(self, region: str, start: datetime, end: datetime) -> list[tuple[str, int]]:
        """The region path and rating (1–5) of each issue closed in [start, end) under `region` whose
        reporter gave one: one call to the issues feed, asking only for those two fields."""
        params = {
            "region": region,
            "status": ["closed"],
            "closed_from": start.isoformat(),
            "closed_to": end.isoformat(),
            "fields": ["region_path", "satisfaction"],
        }
        response = await self._get("/v1/feed/issues", params)
        if response.status_code != 200:
            raise _unavailable(f"GET /v1/feed/issues answered {response.status_code}")
        try:
            rated = []
            for body in _ndjson(response.text):
                path, rating = str(body["region_path"]), body.get("satisfaction")
                if isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 5:
                    rated.append((path, rating))
            return rated
        except (KeyError, TypeError, ValueError) as exc:
            raise _unavailable("an issue came without its region path") from exc

    async def satisfaction(
        self, region: str, start: datetime, end: datetime, units: UnitIndex
    ) -> dict[str, Decimal]:
        """Each unit's mean satisfaction rating (1–5) over the issues closed in [start, end) whose
        reporter gave one; units without any are left out. One call to the issues feed."""
        return mean_ratings(await self.ratings(region, start, end), units)


def mean_ratings(rated: Iterable[tuple[str, int]], units: UnitIndex) -> dict[str, Decimal]:
    """Each unit's mean of the ratings given on issues in it (by their region paths)."""
    by: dict[str, list[int]] = defaultdict(list)
    known: dict[str, str | None] = {}  # path → unit, worked out once per path
    for path, rating in rated:
        if path not in known:
            known[path] = units.unit_of_path(path)
        unit = known[path]
        if unit is not None:
            by[unit].append(rating)
    return {unit: Decimal(sum(values)) / Decimal(len(values)) for unit, values in by.items()}


def _ndjson(text: str) -> list[Any]:
    """The values of an NDJSON answer in one parse: its lines are JSON values, none holding a raw newline
    (JSON escapes them), so joined by commas they are one array."""
    lines = [line for line in text.splitlines() if line.strip()]
    return list(json.loads("[" + ",".join(lines) + "]")) if lines else []


def by_unit(issues: Iterable[FoundIssue], units: UnitIndex) -> dict[str, list[FoundIssue]]:
    """The issues grouped by the unit they lie in (issues outside every unit are left out)."""
    grouped: dict[str, list[FoundIssue]] = defaultdict(list)
    for issue in issues:
        unit = units.unit_of_path(issue.region_path)
        if unit is not None:
            grouped[unit].append(issue)
    return grouped


def _issue(body: Mapping[str, Any]) -> FoundIssue:
    satisfaction = body.get("satisfaction")
    return FoundIssue(
        code=str(body["code"]),
        category=str(body["category"]),
        severity=Severity(body["severity"]),
        status=str(body["status"]),
        region=str(body["region"]),
        region_path=str(body["region_path"]),
        reported_at=datetime.fromisoformat(body["reported_at"]),
        satisfaction=satisfaction
        if isinstance(satisfaction, int) and not isinstance(satisfaction, bool)
        else None,
    )


def _region(body: Mapping[str, Any]) -> RegionNode:
    parent = body.get("parent_code")
    return RegionNode(
        code=str(body["code"]),
        name=str(body["name"]),
        level=str(body["level"]),
        parent_code=None if parent is None else str(parent),
        path=str(body["path"]),
    )
