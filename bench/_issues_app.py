"""The benchmark's throwaway app: the issues service as shipped plus two bare insert endpoints.

Run only by `bench.issues_lifecycle` (`uvicorn --factory bench._issues_app:create_app`), never deployed. The
two endpoints measure what one INSERT costs in the same process, the same worker and through the same
middleware as the real `POST /v1/issues`, so the full report can be held against them:

- `POST /bench/insert/orm`: the report's body parsed as `IssueCreate`, one `Issue` added through the
  SQLAlchemy ORM in the service's own request session (the same pool, one transaction per request).
- `POST /bench/insert/raw`: the same body, one `INSERT … RETURNING id` through a raw asyncpg pool.

Neither checks a token, a category, a region or a deadline: that is what "bare" means.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.issues.app import create_app as create_issues_app
from services.issues.cases.models import Issue
from services.issues.cases.schemas import IssueCreate
from services.issues.settings import IssuesSettings
from services.kit.db import utcnow
from services.kit.deps import SessionDep

GENESIS = "0" * 64
_RAW_INSERT = """
INSERT INTO issues (code, category, severity, source, status, region_code, region_path, county_code,
    description, address, latitude, longitude, fields, before_photo_ids, after_photo_ids, evidence_flags,
    reporter, reporter_role, reported_at, rework_count, extension_count, extension_pending, on_account,
    supervised, last_event_hash, event_count, version, updated_at)
VALUES ($1, $2, $3, $4, 'reported', $5, $6, $7, $8, $9, $10, $11, '{}', '[]', '[]', '[]',
    'bench', 'inspector', $12, 0, 0, false, false, false, $13, 0, 1, $12)
RETURNING id
"""


def _where(region: str) -> tuple[str, str]:
    """A path and county for a bare row: the bench's villages are 12 digits under a 6-digit county."""
    county = region[:6]
    return f"/{region[:2]}/{region[:4]}/{county}/{region[:9]}/{region}/", county


def create_app() -> FastAPI:
    settings = IssuesSettings()
    app = create_issues_app(settings)
    url = (settings.database_url or "").replace("postgresql+asyncpg://", "postgresql://")
    pool: dict[str, asyncpg.Pool] = {}
    lock = asyncio.Lock()

    async def raw_pool() -> asyncpg.Pool:
        async with lock:
            if "pool" not in pool:  # as the service's own pool: up to 20 connections, kept once opened
                pool["pool"] = await asyncpg.create_pool(url, min_size=10, max_size=20)
        return pool["pool"]

    @app.post("/bench/insert/orm", status_code=201, include_in_schema=False)
    async def orm_insert(body: IssueCreate, session: SessionDep) -> JSONResponse:
        path, county = _where(body.region)
        now = utcnow()
        issue = Issue(
            code="o-" + uuid.uuid4().hex,
            category=body.category,
            severity=body.severity.value,
            source=body.source.value,
            status="reported",
            region_code=body.region,
            region_path=path,
            county_code=county,
            description=body.description,
            address=body.address,
            latitude=body.latitude,
            longitude=body.longitude,
            reporter="bench",
            reporter_role="inspector",
            reported_at=now,
            updated_at=now,
            last_event_hash=GENESIS,
        )
        session.add(issue)
        await session.flush()
        return JSONResponse({"id": issue.id}, status_code=201)

    @app.post("/bench/insert/raw", status_code=201, include_in_schema=False)
    async def raw_insert(body: IssueCreate) -> JSONResponse:
        path, county = _where(body.region)
        db = await raw_pool()
        issue_id = await db.fetchval(
            _RAW_INSERT,
            "r-" + uuid.uuid4().hex,
            body.category,
            body.severity.value,
            body.source.value,
            body.region,
            path,
            county,
            body.description,
            body.address,
            body.latitude,
            body.longitude,
            utcnow(),
            GENESIS,
        )
        return JSONResponse({"id": issue_id}, status_code=201)

    return app
