"""The demo county's issues: every state there, every history whole (what a newcomer sees first)."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from services.issues.cases.check import check_all
from services.issues.cases.demo import seed_demo_issues
from services.issues.cases.models import Issue
from services.issues.demo import seed_demo_data
from services.issues.settings import IssuesSettings
from services.kit.db import Database
from services.kit.migrations import upgrade
from tests.databases import _pg, pg_url


@pytest.fixture
async def demo_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    name = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    else:
        name = f"hz_demo_{uuid.uuid4().hex[:10]}"
        await _pg(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    await asyncio.to_thread(upgrade, "issues", url)
    database = Database(url)
    yield database
    await database.dispose()
    if name:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_demo_has_issues_in_every_state_with_whole_histories(demo_database: Database) -> None:
    async with demo_database.transaction() as session:
        await seed_demo_data(session, settings=IssuesSettings(environment="test"))
        made = await seed_demo_issues(session)
        again = await seed_demo_issues(session)
    assert made >= 120 and again == 0  # seeded once
    async with demo_database.transaction() as session:
        issues = (await session.execute(select(Issue))).scalars().all()
    states = collections.Counter(issue.status for issue in issues)
    assert set(states) == {"reported", "assigned", "submitted", "closed", "rejected"}
    assert min(states.values()) >= 24  # a few dozen in every state
    assert any(i.on_account for i in issues) and any(i.extension_pending for i in issues)
    assert any(i.supervised for i in issues) and any(i.rework_count for i in issues)
    codes = sorted(i.code for i in issues)
    assert codes == [f"370282-{c.split('-')[1]}-{n:06d}" for n, c in enumerate(codes, start=1)]
    checked, broken = await check_all(demo_database)
    assert (checked, broken) == (len(issues), [])
