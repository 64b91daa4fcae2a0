"""The scoring service under test: tokens signed with the session's test keys (the issuer is not running).

Its peers are fakes here, served in-process through httpx's MockTransport: `fake_issues` answers the
few issues-service routes scoring reads (regions, the issues list, rectification statistics) from the
tests' own tree (tests/support/builders.py) and the issues a test adds; `fake_media` the photo batch and
attach calls. The live cross-service tests run the real services.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.kit.peers import Peer
from services.kit.state import typed_state
from services.scoring.deps import ScoringState
from tests.support.apps import SCORING, Service
from tests.support.builders import TEST_REGIONS, region_path

CREATED = "2026-11-01T00:00:00Z"


@pytest.fixture
def service() -> Service:
    return SCORING


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode())) if cursor else 0


@dataclass
class FakeIssue:
    code: str
    category: str
    severity: str
    region: str
    reported_at: datetime
    status: str = "assigned"
    satisfaction: int | None = None
    closed_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": int(self.code.rsplit("-", 1)[-1]),
            "code": self.code,
            "category": self.category,
            "severity": self.severity,
            "status": self.status,
            "region": self.region,
            "reported_at": self.reported_at.isoformat(),
            "satisfaction": self.satisfaction,
            "closed_at": None if self.closed_at is None else self.closed_at.isoformat(),
        }

    def feed_line(self, path: str) -> str:
        """The issue as `GET /v1/feed/issues` gives it: one JSON line."""
        line = {k: v for k, v in self.public().items() if k != "id"}
        return json.dumps({**line, "source": "inspection", "region_path": path}, ensure_ascii=False) + "\n"


@dataclass
class FakeIssues:
    """What scoring reads of the issues service (regions, the issues feed and list, rectification figures),
    from the tests' tree; `page_size` makes it page early, `failure` makes every call fail (`"down"`:
    unreachable, or a status code)."""

    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    issues: list[FakeIssue] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    page_size: int = 200
    failure: str | int | None = None

    def __post_init__(self) -> None:
        for number, region in enumerate(TEST_REGIONS, 1):
            path = region_path(region.code)
            self.regions[region.code] = {
                "id": number,
                "code": region.code,
                "name": region.name,
                "level": region.level.value,
                "parent_code": region.parent,
                "path": path,
                "depth": path.count("/") - 2,
                "created_at": CREATED,
                "updated_at": CREATED,
            }

    def add(self, *issues: FakeIssue) -> None:
        self.issues += issues

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        limit = min(int(request.url.params.get("limit", 50)), self.page_size)
        start = _offset(request.url.params.get("cursor"))
        more = start + limit < len(items)
        return {
            "items": items[start : start + limit],
            "next_cursor": _cursor(start + limit) if more else None,
            "limit": limit,
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if self.failure == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if isinstance(self.failure, int):
            return httpx.Response(self.failure, json={"status": self.failure})
        parts = request.url.path.strip("/").split("/")
        params = request.url.params
        if parts[:2] == ["v1", "regions"] and len(parts) == 3:
            region = self.regions.get(parts[2])
            return (
                httpx.Response(200, json=region)
                if region
                else httpx.Response(404, json={"code": "region_not_found"})
            )
        if parts[:2] == ["v1", "regions"] and len(parts) == 4 and parts[3] == "subtree":
            root = self.regions.get(parts[2])
            if root is None:
                return httpx.Response(404, json={"code": "region_not_found"})
            below = sorted(
                (
                    r
                    for r in self.regions.values()
                    if r["path"].startswith(root["path"]) and r["code"] != root["code"]
                ),
                key=lambda r: r["path"],
            )
            if "level" in params:
                below = [r for r in below if r["level"] == params["level"]]
            return httpx.Response(200, json=self._page(request, below))
        if parts == ["v1", "issues"]:
            return httpx.Response(200, json=self._page(request, [i.public() for i in self._issues(params)]))
        if parts == ["v1", "feed", "issues"]:
            lines = [i.feed_line(self.regions[i.region]["path"]) for i in reversed(self._issues(params))]
            return httpx.Response(200, text="".join(lines), headers={"content-type": "application/x-ndjson"})
        if parts == ["v1", "stats", "rectification"]:
            return httpx.Response(200, json=self._page(request, self._figures(request)))
        if parts == ["v1", "feed", "rectification"]:
            lines = [json.dumps(row) + "\n" for row in self._figures(request)]
            return httpx.Response(200, text="".join(lines), headers={"content-type": "application/x-ndjson"})
        return httpx.Response(404, json={"code": "not_found"})

    def _in(self, issue: FakeIssue, region: str) -> bool:
        path = self.regions[issue.region]["path"]
        return bool(path.startswith(self.regions[region]["path"]))

    def _issues(self, params: httpx.QueryParams) -> list[FakeIssue]:
        statuses = params.get_list("status")
        chosen = []
        for issue in sorted(self.issues, key=lambda i: i.code, reverse=True):
            if "region" in params and not self._in(issue, params["region"]):
                continue
            if statuses and issue.status not in statuses:
                continue
            if "reported_from" in params and not (
                datetime.fromisoformat(params["reported_from"])
                <= issue.reported_at
                < datetime.fromisoformat(params["reported_to"])
            ):
                continue
            if "closed_from" in params and not (
                issue.closed_at is not None
                and datetime.fromisoformat(params["closed_from"])
                <= issue.closed_at
                < datetime.fromisoformat(params["closed_to"])
            ):
                continue
            chosen.append(issue)
        return chosen

    def _figures(self, request: httpx.Request) -> list[dict[str, Any]]:
        params = request.url.params
        start, end = datetime.fromisoformat(params["from"]), datetime.fromisoformat(params["to"])
        root = self.regions[params["region"]]
        rows = []
        for region in sorted(self.regions.values(), key=lambda r: r["path"]):
            if region["level"] != params["level"] or not region["path"].startswith(root["path"]):
                continue
            found = [
                i
                for i in self.issues
                if self._in(i, region["code"]) and start <= i.reported_at < end and i.status != "rejected"
            ]
            fixed = sum(1 for i in found if i.status == "closed")
            rows.append(
                {
                    "key": region["code"],
                    "name": region["name"],
                    "found": len(found),
                    "fixed": fixed,
                    "overdue": 0,
                }
            )
        return rows


@dataclass
class FakeMedia:
    """The media service's photo batch and attach, over `photos` (id → record)."""

    photos: dict[str, dict[str, Any]] = field(default_factory=dict)
    pinned: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failure: str | None = None

    def add(
        self,
        photo_id: str,
        *,
        uploader: str,
        region_code: str,
        purpose: str = "scorecard",
        issue_id: str | None = None,
    ) -> None:
        self.photos[photo_id] = {
            "id": photo_id,
            "uploader": uploader,
            "region_code": region_code,
            "purpose": purpose,
            "issue_id": issue_id,
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.failure == "down":
            raise httpx.ConnectError("connection refused", request=request)
        parts = request.url.path.strip("/").split("/")
        if parts == ["v1", "photos"] and request.method == "GET":
            ids = request.url.params["ids"].split(",")
            return httpx.Response(
                200,
                json={
                    "items": [self.photos[i] for i in ids if i in self.photos],
                    "missing": [i for i in ids if i not in self.photos],
                },
            )
        if len(parts) == 4 and parts[3] == "attach" and request.method == "POST":
            body = json.loads(request.content)
            photo = self.photos[parts[2]]
            if photo["issue_id"] not in (None, body["issue_id"]):
                return httpx.Response(409, json={"code": "photo_attached_elsewhere"})
            photo["issue_id"] = body["issue_id"]
            self.pinned.append((parts[2], body))
            return httpx.Response(200, json=photo)
        return httpx.Response(404, json={"code": "not_found"})


def _peer(name: str, handler: Callable[[httpx.Request], httpx.Response]) -> Peer:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Peer(name, f"http://{name}.test", client, None)


@pytest.fixture
def fake_issues(app: FastAPI) -> FakeIssues:
    """The running app reads this fake issues service from now on."""
    fake = FakeIssues()
    typed_state(app, ScoringState).issues = _peer("issues", fake.handler)
    return fake


@pytest.fixture
def fake_media(app: FastAPI) -> FakeMedia:
    fake = FakeMedia()
    typed_state(app, ScoringState).media = _peer("media", fake.handler)
    return fake


def small_rubric(code: str = "town-check", **changes: Any) -> dict[str, Any]:
    """A valid rubric body: two indicators of 60 and 40 points, two deduction rules, weights of 100 %."""
    body: dict[str, Any] = {
        "code": code,
        "name": "镇街考评办法",
        "indicators": [
            {"code": "liu-luan", "name": "六乱整治", "max_points": 60, "group": "村容村貌", "auto_cap": 10},
            {
                "code": "chang-xiao",
                "name": "长效管理",
                "max_points": 40,
                "group": "长效机制",
                "auto_cap": None,
            },
        ],
        "deductions": [
            {"category": "luan-dui-fang", "severity": "normal", "indicator": "liu-luan", "points": 1.5},
            {"category": "luan-da-jian", "severity": "serious", "indicator": "liu-luan", "points": 4},
        ],
        "weights": [
            {"component": "inspection", "percent": 70, "required": True},
            {"component": "rectification", "percent": 30},
        ],
    }
    return {**body, **changes}
