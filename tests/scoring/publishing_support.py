"""What the publishing tests share: rounds with their snapshot and results put straight into the scoring
database, and a stand-in issues service wired as scoring's peer over HTTP (ASGI transport).

The stand-in answers the issues API's documented shapes (`/v1/stats/rectification`, `/v1/issues`,
`/v1/regions/{code}`, `/v1/regions/{code}/subtree`) from figures a test sets, so each test knows the
rectification rates and overdue counts it publishes with; the live end-to-end test
(tests/crossservice/test_scoring_periods_live.py) runs against the real issues service instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import select

from services.kit.identity import child_path
from services.kit.peers import Peer
from services.kit.state import typed_state
from services.scoring.deps import ScoringState
from services.scoring.periods import inspection_windows, parse_period
from services.scoring.rounds.models import Round, RoundResult, RoundUnit
from services.scoring.rubrics.models import RubricVersion, rubric_body
from services.scoring.rubrics.rules import Component, ComponentWeight, Indicator, Rubric
from tests.support.builders import COUNTY, REGION_PATHS, TEST_REGIONS

ISSUES_BASE = "http://issues.test"


@dataclass
class Unit:
    code: str
    name: str
    level: str
    parent: str | None
    path: str


def tree_units(below: str = COUNTY) -> list[Unit]:
    """The test tree from `below` (itself included) down to the villages."""
    return [
        Unit(r.code, r.name, r.level.value, r.parent, REGION_PATHS[r.code])
        for r in TEST_REGIONS
        if REGION_PATHS[r.code].startswith(REGION_PATHS[below]) and r.level.value != "grid"
    ]


def extra_towns(count: int, parent: str = COUNTY) -> list[Unit]:
    """`count` made-up towns under the county (for rankings longer than the test tree's two towns)."""
    return [
        Unit(
            f"{parent}9{n:02d}",
            f"测试镇{n:02d}",
            "town",
            parent,
            child_path(REGION_PATHS[parent], f"{parent}9{n:02d}"),
        )
        for n in range(1, count + 1)
    ]


@dataclass
class FakeIssues:
    """The issues service as scoring reads it, answering from what the test puts in."""

    # level → code → (found, fixed, overdue)
    rectification: dict[str, dict[str, tuple[int, int, int]]] = field(default_factory=dict)
    ratings: dict[str, list[int]] = field(default_factory=dict)  # unit → feedback ratings (closed issues)
    regions: dict[str, Unit] = field(default_factory=dict)
    down: bool = False
    barrier: asyncio.Barrier | None = None  # holds statistics calls until this many are waiting
    stats_calls: int = 0
    stats_regions: list[str] = field(default_factory=list)

    def set_rates(self, level: str, figures: Mapping[str, tuple[int, int, int]]) -> None:
        self.rectification[level] = dict(figures)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def outage(request: Request, call_next: Any) -> Any:
            if self.down:
                return JSONResponse({"code": "down"}, status_code=503)
            return await call_next(request)

        @app.get("/v1/feed/rectification")
        async def figures(region: str, level: str) -> PlainTextResponse:
            self.stats_calls += 1
            self.stats_regions.append(region)
            if self.barrier is not None:
                await self.barrier.wait()
            under = self.regions[region].path
            rows = sorted(
                (code, figures)
                for code, figures in self.rectification.get(level, {}).items()
                if self.regions[code].path.startswith(under)
            )
            lines = [
                json.dumps({"key": code, "name": code, "found": f, "fixed": x, "overdue": o}) + "\n"
                for code, (f, x, o) in rows
            ]
            return PlainTextResponse("".join(lines), media_type="application/x-ndjson")

        def closed_issues() -> list[dict[str, Any]]:
            return [
                {
                    "code": f"370282-2026-{unit[-3:]}{n:03d}",
                    "category": "luan-dui-fang",
                    "severity": "normal",
                    "status": "closed",
                    "region": unit,
                    "region_path": self.regions[unit].path if unit in self.regions else f"/{unit}/",
                    "reported_at": "2026-11-03T09:00:00+08:00",
                    "satisfaction": rating,
                }
                for unit, ratings in sorted(self.ratings.items())
                for n, rating in enumerate(ratings)
            ]

        @app.get("/v1/issues")
        async def issues() -> dict[str, Any]:
            return {"items": closed_issues(), "next_cursor": None, "limit": 200}

        @app.get("/v1/feed/issues")
        async def feed(status: list[str] = Query(default_factory=list)) -> PlainTextResponse:
            lines = [json.dumps(i) for i in closed_issues() if not status or i["status"] in status]
            return PlainTextResponse(
                "".join(line + "\n" for line in lines), media_type="application/x-ndjson"
            )

        @app.get("/v1/regions/{code}")
        async def region(code: str) -> Any:
            unit = self.regions.get(code)
            if unit is None:
                return JSONResponse({"code": "region_not_found"}, status_code=404)
            return _region(unit)

        @app.get("/v1/regions/{code}/subtree")
        async def subtree(code: str, level: str) -> dict[str, Any]:
            root = self.regions[code]
            items = [
                _region(u)
                for u in sorted(self.regions.values(), key=lambda u: u.path)
                if u.level == level and u.path.startswith(root.path) and u.code != code
            ]
            return {"items": items, "next_cursor": None, "limit": 200}

        return app


def _region(unit: Unit) -> dict[str, Any]:
    return {
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "parent_code": unit.parent,
        "path": unit.path,
    }


@pytest.fixture
async def issues(app: FastAPI) -> AsyncIterator[FakeIssues]:
    """The stand-in issues service, wired as the scoring app's peer for this test."""
    state = typed_state(app, ScoringState)
    fake = FakeIssues(regions={u.code: u for u in tree_units()})
    saved = state.issues
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()), base_url=ISSUES_BASE) as http:
        state.issues = Peer("issues", ISSUES_BASE, http, None)
        try:
            yield fake
        finally:
            state.issues = saved


# ---- rounds in the scoring database ----


async def default_rubric_id(app: FastAPI) -> int:
    database = typed_state(app, ScoringState).database
    async with database.sessionmaker() as session:
        found = (
            await session.execute(select(RubricVersion.id).where(RubricVersion.code == "default").limit(1))
        ).scalar_one()
        return int(found)


COVERT_ONLY = Rubric(
    "covert-assessment",
    "暗访评估办法",
    1,
    (Indicator("an-fang", "暗访评估", Decimal(100), "暗访", Decimal(0)),),
    (),
    (ComponentWeight(Component.covert, 1000, required=True),),
)


async def add_rubric(app: FastAPI, rubric: Rubric) -> int:
    database = typed_state(app, ScoringState).database
    async with database.transaction() as session:
        row = RubricVersion(
            code=rubric.code,
            version=rubric.version,
            name=rubric.name,
            body=rubric_body(rubric),
            created_by="test",
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def add_round(
    app: FastAPI,
    *,
    period: str,
    scores: Mapping[str, str | Decimal],
    kind: str = "inspection",
    window: str | None = None,
    unit_level: str = "village",
    units: Iterable[Unit] | None = None,
    rubric_id: int | None = None,
    status: str = "closed",
    scope: str = COUNTY,
    closed_at: datetime | None = None,
    name: str | None = None,
) -> int:
    """A round of `scope` with the test tree (or `units`) as its snapshot and a result per unit scored."""
    database = typed_state(app, ScoringState).database
    parsed = parse_period(period)
    if kind == "inspection" and window is None:
        window = "first"
    if window is not None:
        span = inspection_windows(parsed)[0 if window == "first" else 1]
        starts_on, ends_on = span.start, span.end
    else:
        starts_on, ends_on = parsed.start, parsed.end
    snapshot = list(units) if units is not None else tree_units(scope)
    paths = {u.code: u.path for u in snapshot}
    rubric = rubric_id or await default_rubric_id(app)
    async with database.transaction() as session:
        round_ = Round(
            name=name or f"{parsed.label}{'上旬' if window == 'first' else '下旬' if window else ''}{kind}",
            kind=kind,
            period=period,
            window=window,
            slot=f"{period}:{window}:{kind}:{unit_level}" if kind == "inspection" else None,
            scope_code=scope,
            scope_name=next((u.name for u in snapshot if u.code == scope), scope),
            scope_path=REGION_PATHS.get(scope, paths.get(scope, "/")),
            unit_level=unit_level,
            rubric_id=rubric,
            status=status,
            starts_on=starts_on,
            ends_on=date.fromordinal(ends_on.toordinal() - 1),
            closed_at=(closed_at or datetime(parsed.end.year, parsed.end.month, 1, tzinfo=UTC))
            if status == "closed"
            else None,
            closed_by="test" if status == "closed" else None,
            created_by="test",
        )
        session.add(round_)
        await session.flush()
        assert round_.id is not None
        for unit in snapshot:
            session.add(
                RoundUnit(
                    round_id=round_.id,
                    code=unit.code,
                    name=unit.name,
                    parent_code=unit.parent,
                    path=unit.path,
                    level=unit.level,
                )
            )
        if status == "closed":
            for code, score in scores.items():
                session.add(
                    RoundResult(
                        round_id=round_.id,
                        unit_code=code,
                        unit_path=paths[code],
                        score=Decimal(score),
                        max_score=Decimal(100),
                        breakdown={"indicators": [], "deductions": [], "note": f"test {code}"},
                    )
                )
        return round_.id


async def add_month(
    app: FastAPI, period: str, scores: Mapping[str, str | Decimal], **kwargs: Any
) -> list[int]:
    """A month's two inspection rounds (上旬, 下旬) with the same scores."""
    return [
        await add_round(app, period=period, scores=scores, window=w, **kwargs) for w in ("first", "second")
    ]
