"""Check every issue's history from the command line: `python -m services.issues.cases.check`.

Reads the issues service's database (its settings, from the environment, or `--database-url`) in batches,
recomputes every event's hash and link, and prints each issue whose chain does not hold. Exit status 0
when every chain is whole, 1 when any is broken: fit for a nightly job.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import col

from services.issues.cases.history import link_of
from services.issues.cases.models import Issue, IssueEvent
from services.issues.cases.rules import ChainBreak, first_break
from services.issues.settings import IssuesSettings
from services.kit.db import Database

BATCH = 500


@dataclass(frozen=True)
class Finding:
    code: str
    problem: ChainBreak


async def check_all(database: Database, batch: int = BATCH) -> tuple[int, list[Finding]]:
    """(issues checked, the broken ones), reading `batch` issues and their events at a time."""
    checked, after = 0, 0
    broken: list[Finding] = []
    while True:
        async with database.transaction() as session:
            issues = (
                (
                    await session.execute(
                        select(Issue).where(col(Issue.id) > after).order_by(col(Issue.id)).limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if not issues:
                return checked, broken
            ids = [issue.id for issue in issues]
            events = (
                (
                    await session.execute(
                        select(IssueEvent)
                        .where(col(IssueEvent.issue_id).in_(ids))
                        .order_by(col(IssueEvent.issue_id), col(IssueEvent.seq), col(IssueEvent.id))
                    )
                )
                .scalars()
                .all()
            )
        by_issue: dict[int, list[IssueEvent]] = defaultdict(list)
        for event in events:
            by_issue[event.issue_id].append(event)
        for issue in issues:
            assert issue.id is not None
            found = first_break(
                ((link_of(e), e.hash) for e in by_issue[issue.id]), expected_head=issue.last_event_hash
            )
            if found is not None:
                broken.append(Finding(issue.code, found))
        checked += len(issues)
        after = ids[-1] or after


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the hash chain of every issue's history.")
    parser.add_argument("--database-url", help="default: the issues service's settings (HUANZHI_ISSUES_…)")
    args = parser.parse_args(argv)
    url = args.database_url or IssuesSettings().resolved_database_url

    async def run() -> tuple[int, list[Finding]]:
        database = Database(url)
        try:
            return await check_all(database)
        finally:
            await database.dispose()

    checked, broken = asyncio.run(run())
    for finding in broken:
        print(f"{finding.code}: event {finding.problem.seq}: {finding.problem.reason}")
    print(f"{checked} issues checked, {len(broken)} with a broken history")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
