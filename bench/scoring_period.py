"""Publishing one month end to end: `POST /v1/periods/{month}/publish` of a county (~400 villages) and of a
province (~10⁵ villages, two inspection rounds each), with the issues service's statistics read over HTTP.

Run: `uv run python -m bench.scoring_period [--scales county province] [--runs 5] [--province-runs 2]
[--keep]`. Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth). Aims (issue 9): a county
≤ 100 ms, a province ≤ 2 s.

The data: the province of `bench.issues_lifecycle` (16 cities, ~140 counties, ~1,700 towns, ~10⁵ villages;
the same generator and seed) and its 10⁶ issues over a year, of which the last whole month's (~8 × 10⁴:
found, fixed, rejected, overdue, with satisfaction ratings on many closed ones) are COPYed into the issues
database `hz_bench_scoring_issues`. The scoring database `hz_bench_scoring` holds the default rubric (its
migration's), and for the month two closed inspection rounds (上旬, 下旬) of the smallest county (its
snapshot: the county, its towns and villages) and two of the province (scope `37`: every city, county, town
and village), with a round result per village and round, COPYed as closing the rounds would leave them.
Both databases are made afresh, and dropped at the end unless `--keep`.

Both services run for real (`uvicorn --factory services.<name>.app:create_app`, one worker each, on
PostgreSQL), scoring fetching its service token from issues and verifying the admin's token with the
issues service's JWKS, as deployed. Each run deletes the scope's publication (its rows cascade) and
publishes again, so every run does the whole work: the rounds, snapshot and results read, the rectification
figures of every village and town (`GET /v1/stats/rectification?level=…`, 200 rows a page) and the
satisfaction ratings (the issues closed in the month, one NDJSON answer of `GET /v1/feed/issues`) fetched
side by side, scores,
rankings, lists and escalations computed, everything and the bulletin written. Measured: wall time on the
client, CPU of the scoring and issues processes (utime + stime from /proc) and of the PostgreSQL backends.

"Where the time goes" is one more publication of each scope made in this process by the same service code
(after one untimed publication, undone, to warm the caches)
(`services.scoring.publishing.service.publish` on its own session, the feed over HTTP to the running
issues service) with timers around its phases and the feed's call count.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

from bench._util import ServiceProcess, cpu_ms, free_port, machine, table, wait_healthy
from bench.issues_lifecycle import (
    PG_EPOCH,
    SEED,
    DbCpu,
    Tree,
    _tuple_codecs,
    admin_sql,
    fill_issues,
    fill_regions,
    make_issues,
    make_tree,
    pg_dsn,
    sa_url,
    token,
)
from bench.issues_lifecycle import start_service as start_issues
from services.issues.auth.keys import KeyRing
from services.kit.auth import Caller
from services.kit.db import Database
from services.kit.identity import ROLE_SCOPES, Role, Subject
from services.kit.migrations import upgrade
from services.kit.peers import ClientCredentials, Peer
from services.kit.settings import DEV_SERVICE_SECRET
from services.scoring.feed import IssuesFeed
from services.scoring.periods import SHANGHAI, Period, PeriodKind, inspection_windows, period_of
from services.scoring.publishing import bulletins
from services.scoring.publishing import service as publishing

ROOT = Path(__file__).resolve().parents[1]
ISSUES_DB, SCORING_DB = "hz_bench_scoring_issues", "hz_bench_scoring"
BREAKDOWN = {  # what a closed round stores per unit, about as long as the service's own breakdowns
    "indicators": [
        {"code": c, "max_points": "10", "deducted": "0"} for c in ("liu-luan", "la-ji", "wu-shui")
    ],
    "deductions": [
        {"indicator": "liu-luan", "source": "item", "points": "2", "counted": "2", "note": "柴草乱堆"}
    ],
    "unmatched": [],
}


@dataclass
class Scope:
    name: str
    code: str
    path: str
    villages: int
    units: list[tuple[str, str, str, str | None, str]]  # code, name, level, parent code, path


def scopes(tree: Tree) -> dict[str, Scope]:
    """The smallest county (the closest to 400 villages) and the whole province."""
    sizes = [len(v) for v in tree.county_villages]
    county_i = int(np.argmin(sizes))
    county_path = tree.county_paths[county_i]

    def unit(row: tuple[int, str, str, str, int | None, str]) -> tuple[str, str, str, str | None, str]:
        _, code, name, level, _, path = row
        parts = [p for p in path.split("/") if p]
        return code, name, level, parts[-2] if len(parts) > 1 else None, path

    county_units = [unit(r) for r in tree.rows if r[5].startswith(county_path)]
    return {
        "county": Scope("county", tree.counties[county_i], county_path, sizes[county_i], county_units),
        "province": Scope("province", "37", "/37/", len(tree.village_codes), [unit(r) for r in tree.rows]),
    }


async def fill_scoring(db: str, month: Period, scope: Scope, rng: np.random.Generator) -> None:
    """Two closed inspection rounds of `scope` in `month`, with their snapshot and a result per village."""
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        await _tuple_codecs(conn)
        rubric = await conn.fetchval(
            "SELECT id FROM rubrics WHERE code = 'default' ORDER BY version DESC LIMIT 1"
        )
        now_us = int((datetime.now(UTC) - PG_EPOCH) / timedelta(microseconds=1))
        name = next(n for c, n, *_ in scope.units if c == scope.code)
        villages = [(c, p) for c, _, level, _, p in scope.units if level == "village"]
        breakdown = json.dumps(BREAKDOWN, ensure_ascii=False)
        for window in inspection_windows(month):
            round_id = await conn.fetchval(
                'INSERT INTO rounds (name, kind, period, "window", slot, scope_code, scope_name, scope_path, '
                "unit_level, rubric_id, status, starts_on, ends_on, closed_at, closed_by, created_by, created_at, "
                "updated_at) VALUES ($1, 'inspection', $2, $3, $4, $5, $6, $7, 'village', $8, 'closed', $9, $10, "
                "$11, 'bench', 'bench', $11, $11) RETURNING id",
                f"{window.label}督查",
                month.code,
                window.half.value,
                f"{month.code}:{window.half.value}:village",
                scope.code,
                name,
                scope.path,
                rubric,
                window.start,
                window.end - timedelta(days=1),
                now_us,
            )
            await conn.copy_records_to_table(
                "round_units",
                records=[(round_id, c, n, pc, p, lv) for c, n, lv, pc, p in scope.units],
                columns=["round_id", "code", "name", "parent_code", "path", "level"],
            )
            scores = np.round(rng.uniform(55, 100, len(villages)), 2)
            await conn.copy_records_to_table(
                "round_results",
                records=[
                    (round_id, c, p, Decimal(f"{s:.2f}"), Decimal(100), breakdown, now_us)
                    for (c, p), s in zip(villages, scores.tolist(), strict=True)
                ],
                columns=[
                    "round_id",
                    "unit_code",
                    "unit_path",
                    "score",
                    "max_score",
                    "breakdown",
                    "created_at",
                ],
            )
        await conn.execute("VACUUM (ANALYZE) round_units")
        await conn.execute("VACUUM (ANALYZE) round_results")
    finally:
        await conn.close()


async def unpublish(db: str, scope: str, month: Period) -> None:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM published_periods WHERE scope_code = $1 AND period = $2", scope, month.code
            )
        ]
        await conn.execute("DELETE FROM bulletins WHERE publication_id = ANY($1::int[])", ids)
        await conn.execute("DELETE FROM published_periods WHERE id = ANY($1::int[])", ids)
    finally:
        await conn.close()


async def filled(month: Period, wanted: list[Scope]) -> bool:
    """Whether the kept databases hold this month's closed rounds of every wanted scope."""
    try:
        conn = await asyncpg.connect(pg_dsn(SCORING_DB))
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        scopes = {
            r["scope_code"]
            for r in await conn.fetch(
                "SELECT scope_code FROM rounds WHERE period = $1 AND status = 'closed'", month.code
            )
        }
    finally:
        await conn.close()
    return all(scope.code in scopes for scope in wanted)


def start_scoring(db: str, issues_url: str, work: Path) -> ServiceProcess:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUANZHI_")}
    env.update(
        {
            "HUANZHI_SCORING_ENVIRONMENT": "development",
            "HUANZHI_SCORING_DATA_DIR": str(work),
            "HUANZHI_SCORING_DATABASE_URL": sa_url(db),
            "HUANZHI_SCORING_TOKEN_ISSUER": issues_url,
            "HUANZHI_SCORING_PEER_TIMEOUT_SECONDS": "60",
            "HUANZHI_SCORING_LOG_JSON": "false",
            "HUANZHI_SCORING_LOG_LEVEL": "WARNING",
            "MALLOC_ARENA_MAX": "2",
        }
    )
    log = work / f"scoring-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "services.scoring.app:create_app", "--host",
             "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    service = ServiceProcess(process, url, log)
    try:
        wait_healthy(process, url, log, seconds=90, path="/readyz")
    except (RuntimeError, TimeoutError):
        service.stop()
        raise
    return service


@dataclass
class Run:
    wall_ms: float
    scoring_cpu_ms: float
    issues_cpu_ms: float
    db_cpu_ms: float
    status: int


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # this process's CPU (side-by-side reads overlap)
    calls: int = 0
    total: float = 0.0
    total_cpu: float = 0.0


def timed(phases: Phases, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(fn):

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return await fn(*args, **kwargs)
            finally:
                phases.seconds[name] = phases.seconds.get(name, 0.0) + time.perf_counter() - start
                phases.cpu[name] = phases.cpu.get(name, 0.0) + time.process_time() - cpu

        return run_async

    def run(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            phases.seconds[name] = phases.seconds.get(name, 0.0) + time.perf_counter() - start
            phases.cpu[name] = phases.cpu.get(name, 0.0) + time.process_time() - cpu

    return run


async def in_process(issues_url: str, scope: Scope, month: Period, profile: Path | None = None) -> Phases:
    """One publication made by the service's code in this process, its phases timed (and profiled with
    cProfile into `profile` if given: the timers then include the profiler's overhead)."""
    phases = Phases()
    database = Database(sa_url(SCORING_DB))
    async with httpx.AsyncClient(timeout=120) as http:
        credentials = ClientCredentials(
            http, issues_url + "/v1/auth/token", "svc-scoring", DEV_SERVICE_SECRET
        )
        feed = IssuesFeed(Peer("issues", issues_url, http, credentials))
        await credentials()  # the token is cached in the service too
        caller = Caller(
            Subject.user(1), Role.admin, scope.code, scope.path, frozenset(ROLE_SCOPES[Role.admin])
        )
        # A publication before the timed one, undone: the timed one runs with SQLAlchemy's statement
        # caches and the asyncpg connection warm, as in the long-running service.
        async with database.transaction() as session:
            assert (await publishing.publish(session, caller, feed, month.code, scope.code)).created
        await unpublish(SCORING_DB, scope.code, month)
        feed.calls = 0
        saved: dict[str, Any] = {}
        patches: dict[str, tuple[Any, str]] = {
            "issues service reads (side by side)": (publishing, "_figures"),
            "  of which rectification figures (the levels' calls summed)": (feed, "rectification"),
            "  of which the month's closed issues' ratings": (feed, "ratings"),
            "scores, rankings, lists": (publishing, "compute_period"),
            "write rows": (publishing, "_write"),
            "bulletin body": (bulletins, "period_body"),
        }
        for name, (owner, attr) in patches.items():
            saved[name] = getattr(owner, attr)
            setattr(owner, attr, timed(phases, name, saved[name]))
        try:
            profiler = cProfile.Profile() if profile is not None else None
            start, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            async with database.transaction() as session:
                outcome = await publishing.publish(session, caller, feed, month.code, scope.code)
            phases.total = time.perf_counter() - start
            phases.total_cpu = time.process_time() - cpu
            if profiler is not None and profile is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            assert outcome.created
        finally:
            for name, (owner, attr) in patches.items():
                setattr(owner, attr, saved[name])
            await database.dispose()
        phases.calls = feed.calls
    return phases


def measure(
    scoring: ServiceProcess,
    issues: ServiceProcess,
    headers: dict[str, str],
    scope: Scope,
    month: Period,
    runs: int,
) -> list[Run]:
    results = []
    with httpx.Client(base_url=scoring.url, timeout=600) as client:
        for _ in range(runs):
            asyncio.run(unpublish(SCORING_DB, scope.code, month))
            db_issues, db_scoring = DbCpu(ISSUES_DB), DbCpu(SCORING_DB)
            cpu_s, cpu_i = cpu_ms(scoring.pid), cpu_ms(issues.pid)
            start = time.perf_counter()
            answer = client.post(
                f"/v1/periods/{month.code}/publish", json={"scope": scope.code}, headers=headers
            )
            wall = (time.perf_counter() - start) * 1000
            if answer.status_code != 201:
                raise SystemExit(f"publish answered {answer.status_code}: {answer.text[:500]}")
            results.append(
                Run(
                    wall,
                    cpu_ms(scoring.pid) - cpu_s,
                    cpu_ms(issues.pid) - cpu_i,
                    db_issues.used() + db_scoring.used(),
                    answer.status_code,
                )
            )
            print(f"  {scope.name}: {wall:,.0f} ms", flush=True)
    return results


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", nargs="+", default=["county", "province"], choices=["county", "province"])
    parser.add_argument("--runs", type=int, default=5, help="publications of the county")
    parser.add_argument("--province-runs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep both databases")
    parser.add_argument(
        "--profile",
        type=Path,
        help="a folder: cProfile the in-process publication of each scale into <folder>/<scale>.pstats",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use the databases a run with --keep left (same month, same scales) instead of filling them "
        "again; implies --keep",
    )
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    t0 = time.perf_counter()
    tree = make_tree(rng)
    now = datetime.now(UTC).replace(microsecond=0)
    month = period_of(PeriodKind.month, now.astimezone(SHANGHAI)).previous()
    chosen = scopes(tree)
    reuse = args.reuse and asyncio.run(filled(month, [chosen[name] for name in args.scales]))
    rows = np.zeros(0, dtype=np.int64)
    issues = None
    if not reuse:
        issues = make_issues(tree, 1_000_000, now, rng)
        start_us = int((month.starts_at - PG_EPOCH) / timedelta(microseconds=1))
        end_us = int((month.ends_at - PG_EPOCH) / timedelta(microseconds=1))
        reported, closed = issues.cols["reported_at"], issues.cols["closed_at"]
        closed_in = issues.masks["closed_at"] & (closed >= start_us) & (closed < end_us)
        # The month's reports (the statistics) and the issues closed in it (the satisfaction ratings).
        rows = np.flatnonzero(((reported >= start_us) & (reported < end_us)) | closed_in)
    print(
        f"generated {len(tree.rows):,} regions"
        + (
            " (reusing the kept databases)"
            if reuse
            else f" and {len(rows):,} issues reported or closed in {month.code}"
        )
        + f" in {time.perf_counter() - t0:.1f} s; county {chosen['county'].code} has {chosen['county'].villages} "
        f"villages, the province {chosen['province'].villages:,}",
        flush=True,
    )

    work = Path(tempfile.mkdtemp(prefix="hz-bench-scoring-"))
    keys = work / "keys"
    keyring = KeyRing.from_folder(keys, generate_if_empty=True)
    services: list[ServiceProcess] = []
    try:
        t0 = time.perf_counter()
        if reuse:
            upgrade("scoring", sa_url(SCORING_DB))  # a migration added since the databases were kept
        else:
            assert issues is not None
            for db in (ISSUES_DB, SCORING_DB):
                asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
                asyncio.run(admin_sql(f'CREATE DATABASE "{db}"'))
            upgrade("issues", sa_url(ISSUES_DB))
            upgrade("scoring", sa_url(SCORING_DB))
            asyncio.run(fill_regions(ISSUES_DB, tree))
            asyncio.run(fill_issues(ISSUES_DB, tree, issues, rows))
            for name in args.scales:
                asyncio.run(fill_scoring(SCORING_DB, month, chosen[name], rng))
        print(f"filled in {time.perf_counter() - t0:.1f} s", flush=True)

        issues_service = start_issues("services.issues.app:create_app", ISSUES_DB, work, keys)
        services.append(issues_service)
        scoring_service = start_scoring(SCORING_DB, issues_service.url, work)
        services.append(scoring_service)

        report: list[list[object]] = []
        where: list[tuple[str, Phases]] = []
        for name in args.scales:
            scope = chosen[name]
            headers = {
                "Authorization": "Bearer "
                + token(keyring, issues_service.url, Role.admin, scope.code, scope.path, "user:1")
            }
            load = loadavg()
            runs = measure(
                scoring_service,
                issues_service,
                headers,
                scope,
                month,
                args.runs if name == "county" else args.province_runs,
            )
            walls = [r.wall_ms for r in runs]
            report.append(
                [
                    f"{name} ({scope.villages:,} villages)",
                    len(runs),
                    f"{statistics.median(walls):,.0f}",
                    f"{min(walls):,.0f}",
                    f"{statistics.median(r.scoring_cpu_ms for r in runs):,.0f}",
                    f"{statistics.median(r.issues_cpu_ms for r in runs):,.0f}",
                    f"{statistics.median(r.db_cpu_ms for r in runs):,.0f}",
                    "≤ 100" if name == "county" else "≤ 2,000",
                    load,
                ]
            )
            asyncio.run(unpublish(SCORING_DB, scope.code, month))
            profile = None if args.profile is None else args.profile / f"{name}.pstats"
            where.append((name, asyncio.run(in_process(issues_service.url, scope, month, profile))))

        print(f"\n{machine()}; month {month.code}; load average at the end {loadavg()}\n")
        print(
            table(
                [
                    "scope",
                    "runs",
                    "wall p50 ms",
                    "wall min ms",
                    "scoring CPU ms",
                    "issues CPU ms",
                    "PostgreSQL CPU ms",
                    "aim ms",
                    "load before",
                ],
                report,
            )
        )
        print()
        for name, phases in where:
            top = [k for k in phases.seconds if not k.startswith("  ")]
            rest = phases.total - sum(phases.seconds[k] for k in top)
            rest_cpu = phases.total_cpu - sum(phases.cpu[k] for k in top)
            rows_ = [
                [phase, f"{seconds * 1000:,.0f}", f"{phases.cpu[phase] * 1000:,.0f}"]
                for phase, seconds in phases.seconds.items()
            ]
            rows_.append(["database reads and the rest", f"{rest * 1000:,.0f}", f"{rest_cpu * 1000:,.0f}"])
            rows_.append(
                ["total (in process)", f"{phases.total * 1000:,.0f}", f"{phases.total_cpu * 1000:,.0f}"]
            )
            print(f"{name}: {phases.calls} calls to the issues service")
            print(table(["phase", "wall ms", "bench process CPU ms"], rows_))
            print()
    finally:
        for service in reversed(services):
            service.stop()
        if not (args.keep or args.reuse):
            for db in (ISSUES_DB, SCORING_DB):
                asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
