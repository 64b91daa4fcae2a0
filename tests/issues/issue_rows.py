"""Issues inserted straight into the database, for volume: every NOT NULL column set, no events.

The statistics and the 台账 read only the issue rows, so a test that needs a county's year of issues
builds them here in one executemany instead of walking each through the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert

from services.issues.cases.models import Issue
from services.issues.cases.rules import GENESIS
from services.kit.state import state_of
from tests.support.builders import COUNTY, VILLAGE, region_path

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 on Monday 2 March 2026, Beijing time


def issue_row(
    number: int,
    *,
    region: str = VILLAGE,
    status: str = "assigned",
    reported_at: datetime = T0,
    closed_at: datetime | None = None,
    deadline: datetime | None = None,
    category: str = "luan-dui-fang",
    source: str = "inspection",
    rework_count: int = 0,
    extension_count: int = 0,
    description: str = "村东头路边堆放建筑垃圾",
    address: str | None = "村东首",
    responsible: str | None = None,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    reporter: str = "user:2",
) -> dict[str, Any]:
    """One issue's columns; an assigned, submitted or closed issue defaults to a deadline seven days after
    its report (a reported or rejected one has none)."""
    if deadline is None and status in ("assigned", "submitted", "closed"):
        deadline = reported_at + timedelta(days=7)
    return {
        "code": f"{COUNTY}-{reported_at.year}-{number:06d}",
        "category": category,
        "severity": "normal",
        "source": source,
        "status": status,
        "region_code": region,
        "region_path": region_path(region),
        "county_code": COUNTY,
        "responsible_region_code": responsible,
        "responsible_region_path": region_path(responsible) if responsible else None,
        "description": description,
        "address": address,
        "fields": {},
        "before_photo_ids": list(before),
        "after_photo_ids": list(after),
        "evidence_flags": [],
        "reporter": reporter,
        "reporter_role": "inspector",
        "reported_at": reported_at,
        "deadline": deadline,
        "closed_at": closed_at,
        "closed_late": None if closed_at is None else bool(deadline and closed_at > deadline),
        "rejected_at": reported_at + timedelta(hours=1) if status == "rejected" else None,
        "reject_reason": "invalid" if status == "rejected" else None,
        "rework_count": rework_count,
        "extension_count": extension_count,
        "extension_pending": False,
        "on_account": False,
        "supervised": False,
        "last_event_hash": GENESIS,
        "event_count": 0,
        "version": 1,
        "updated_at": reported_at,
    }


async def insert_issues(app: FastAPI, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows in one transaction (an executemany)."""
    async with state_of(app).database.transaction() as session:
        for start in range(0, len(rows), 1000):
            await session.execute(insert(Issue), list(rows[start : start + 1000]))
