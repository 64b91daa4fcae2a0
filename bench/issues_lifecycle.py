"""The issue lifecycle at province scale: list and statistics latency, create throughput, export memory.

Run: `uv run python -m bench.issues_lifecycle [--sizes 10000 100000 1000000] [--requests 200]
[--seconds 8] [--rounds 2] [--concurrency 16] [--keep] [--explain] [--service-root PATH]`. Needs PostgreSQL on
127.0.0.1:5432 (user postgres, trust auth) and `wrk` (`apt-get install wrk`) for the create throughput
(`--skip create` without it). One database per size, `hz_bench_issues_<size>` (`--db` sets the prefix),
migrated by `services.kit.migrations.upgrade("issues", url)` as the service's checkout has it; dropped at the
end unless `--keep`, and a kept one holding its size is reused by the next run (migrated to head first, so a
new index is built and timed on it). Filling all three takes ~3 min on two shared cores.

The data: one province (山东省 37): 16 cities, 142 counties, 1,710 towns and 103,840 villages as the issues
service stores its region tree (materialized paths), and 10⁶ issues reported over the last 365 days,
generated in time order (ids and per-county-year codes follow time) and filled by COPY. Counties differ in
activity (log-normal weights, σ 0.6: a county holds 1,500–24,000 issues, median 6,000); villages within a
county are drawn evenly. States follow age: 89 % closed (one in seven late), 7 % rejected, 4 % open —
reported, assigned (58 % of them past their deadline, a few on account 挂账), submitted; deadlines are the
category's days for the severity; 90 % carry a position. Sizes are nested: the 10⁴ set is every 100th issue of the 10⁶ set (so it too spans the whole year),
10⁵ every 10th. No events are stored (no measured route reads them). COPY, then VACUUM ANALYZE, as
autovacuum would leave the table.

At each size the service runs for real — `uvicorn --factory bench._issues_app:create_app` (the issues app
as shipped plus two bare insert endpoints, see that module), one worker, h11, as `services/devserver.py`
starts it — with signing keys the bench made (`HUANZHI_ISSUES_SIGNING_KEYS_DIR`) and tokens minted with
`mint_access_token`:

- **list**: one request at a time (keep-alive), the queries in rounds so load from elsewhere hits them
  alike; p50/p95/max in ms on the client, and the service's CPU (utime + stime from /proc) and the
  PostgreSQL backends' CPU per request. The county office of a busy county (its admin, the 90th percentile
  of issues per county): `status=assigned` and the most common category; the county's first page without a
  filter and the page after it (`cursor`); the officer of that county's busiest town: `status=assigned`.
- **statistics**: `GET /v1/stats/rectification?region=<county>&from=&to=&group_by=child` for the last
  whole month, if the service has that route (else "not yet measured").
- **export**: peak RSS (VmHWM reset, and VmRSS sampled every 5 ms) of the service during
  `GET /v1/issues/export?format=xlsx` of the province (its admin's token) over the most recent days that
  hold ~10⁴ and ~10⁵ issues, if the service has that route.
- **create**: `wrk` (one thread, `--concurrency` connections, `--seconds` per phase, loopback) against the
  full `POST /v1/issues` (16 county inspectors' findings in their own villages, no photos: category and
  region checks, the code counter, the deadline in working days, the duplicate lookup, the first event) and
  the two bare inserts (one ORM INSERT, one raw asyncpg INSERT), in the same worker, `--rounds` rounds of
  the three, interleaved. Rows created are deleted after each size.

`--explain` prints EXPLAIN (ANALYZE, BUFFERS) of the statements the service's own code sends (captured in
this process) for the county's list queries and its statistics at the largest size, and times each alone.
`--service-root` runs the service (and its migrations) from another checkout, e.g. a `git worktree` of an
earlier commit, to measure before and after a change on the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from numpy.typing import NDArray

from bench._util import (
    ServiceProcess,
    cpu_ms,
    free_port,
    machine,
    memory_mb,
    percentile,
    reset_peak,
    table,
    wait_healthy,
)
from services.issues.auth.keys import KeyRing
from services.issues.auth.tokens import mint_access_token
from services.kit.identity import ROLE_SCOPES, Role

ROOT = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
AUDIENCE = "huanzhi"
SEED = 20261205
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
US_DAY = 86_400_000_000
CHINA_US = 8 * 3_600_000_000

# The shipped categories (code, minor/normal/serious working days, share of reports; required fields?).
CATEGORIES: list[tuple[str, tuple[int, int, int], float]] = [
    ("sheng-huo-la-ji", (2, 3, 5), 0.20),
    ("luan-dui-fang", (3, 5, 10), 0.16),
    ("luan-reng-dao", (3, 5, 10), 0.10),
    ("jian-zhu-la-ji", (5, 10, 15), 0.08),
    ("ting-yuan", (3, 5, 10), 0.08),
    ("dao-lu-yan-xian", (3, 5, 10), 0.07),
    ("wu-shui-hei-chou", (10, 15, 30), 0.06),
    ("luan-ting-fang", (3, 5, 10), 0.05),
    ("xiao-guang-gao", (2, 3, 5), 0.04),
    ("luan-tie-hua", (3, 5, 10), 0.03),
    ("hu-ce-gai-ce", (10, 15, 30), 0.04),
    ("chu-qin-fen-wu", (5, 10, 15), 0.03),
    ("lv-hua-luo-tu", (5, 10, 20), 0.03),
    ("luan-da-jian", (10, 15, 30), 0.02),
    ("luan-pai-fang", (5, 10, 15), 0.01),
]
# Categories a report may name with no extra fields (the load generator's bodies carry none).
PLAIN_CATEGORIES = [
    "sheng-huo-la-ji",
    "luan-dui-fang",
    "luan-reng-dao",
    "jian-zhu-la-ji",
    "ting-yuan",
    "dao-lu-yan-xian",
]
SOURCES = [  # (source, share, reporter role, starts assigned)
    ("grid", 0.42, "grid", False),
    ("inspection", 0.22, "inspector", True),
    ("citizen", 0.14, "citizen", False),
    ("hotline", 0.10, "admin", False),
    ("covert", 0.06, "inspector", True),
    ("integration", 0.05, "integration", False),
    ("open311", 0.01, "integration", False),
]
SEVERITIES = [("minor", 0.30), ("normal", 0.55), ("serious", 0.15)]
STATUSES = ["reported", "assigned", "submitted", "closed", "rejected"]
# Status shares (reported, assigned, submitted, closed, rejected) by age of the report in days.
STATUS_AGES = [3, 14, 60]
STATUS_BY_AGE = [
    [0.35, 0.50, 0.10, 0.03, 0.02],
    [0.05, 0.35, 0.12, 0.42, 0.06],
    [0.01, 0.04, 0.03, 0.86, 0.06],
    [0.002, 0.004, 0.001, 0.923, 0.07],
]
REJECT_REASONS = ["invalid", "duplicate", "not_responsible", "other"]
DESCRIPTIONS = [
    "村东头路边堆放建筑垃圾约2立方米",
    "河道漂浮生活垃圾，需及时打捞",
    "村内主路两侧柴草乱堆",
    "垃圾桶满溢未及时清运",
    "墙面有小广告乱贴",
    "农户门前杂物乱放，影响通行",
    "生活污水直排入沟渠",
    "废旧车辆长期占道停放",
    "田间地头农药瓶、地膜未回收",
    "村委会北侧空地裸露，扬尘较大",
]
ADDRESSES = ["村东首，村道北侧", "村委会西侧", "南北主街中段", "小学门口", "河道桥头", None]


# ---- the region tree -----------------------------------------------------------------------------------


@dataclass
class Tree:
    """Province › cities › counties › towns › villages, with each village's county and coordinates."""

    rows: list[tuple[int, str, str, str, int | None, str]]  # id, code, name, level, parent id, path
    counties: list[str]
    county_paths: list[str]
    county_towns: list[list[int]]  # per county: indexes into towns
    towns: list[str]
    town_paths: list[str]
    village_codes: NDArray[np.str_]
    village_paths: NDArray[np.str_]
    village_county: NDArray[np.int64]  # index into counties
    village_town: NDArray[np.int64]  # index into towns
    village_lat: NDArray[np.float64]
    village_lon: NDArray[np.float64]
    county_villages: list[NDArray[np.int64]] = field(default_factory=list)


def make_tree(rng: np.random.Generator) -> Tree:
    rows: list[tuple[int, str, str, str, int | None, str]] = []
    next_id = iter(range(1, 10_000_000))
    province_id = next(next_id)
    rows.append((province_id, "37", "山东省", "province", None, "/37/"))
    counties: list[str] = []
    county_paths: list[str] = []
    county_towns: list[list[int]] = []
    towns: list[str] = []
    town_paths: list[str] = []
    v_codes: list[str] = []
    v_paths: list[str] = []
    v_county: list[int] = []
    v_town: list[int] = []
    v_lat: list[float] = []
    v_lon: list[float] = []
    for c in range(16):
        city = f"37{c + 1:02d}"
        city_id = next(next_id)
        city_path = f"/37/{city}/"
        rows.append((city_id, city, f"第{c + 1}市", "city", province_id, city_path))
        for k in range(int(rng.integers(7, 11))):
            county = f"{city}{k + 2:02d}"
            county_id = next(next_id)
            county_path = f"{city_path}{county}/"
            rows.append((county_id, county, f"{county}区", "county", city_id, county_path))
            county_index = len(counties)
            counties.append(county)
            county_paths.append(county_path)
            county_towns.append([])
            lat0, lon0 = rng.uniform(34.6, 38.0), rng.uniform(115.2, 122.2)
            for t in range(int(rng.integers(9, 16))):
                town = f"{county}{t + 101:03d}"
                town_id = next(next_id)
                town_path = f"{county_path}{town}/"
                rows.append((town_id, town, f"{town}镇", "town", county_id, town_path))
                county_towns[county_index].append(len(towns))
                towns.append(town)
                town_paths.append(town_path)
                for v in range(int(rng.integers(45, 78))):
                    village = f"{town}{v + 201:03d}"
                    path = f"{town_path}{village}/"
                    rows.append((next(next_id), village, f"{village}村", "village", town_id, path))
                    v_codes.append(village)
                    v_paths.append(path)
                    v_county.append(county_index)
                    v_town.append(len(towns) - 1)
                    v_lat.append(lat0 + rng.uniform(-0.15, 0.15))
                    v_lon.append(lon0 + rng.uniform(-0.2, 0.2))
    tree = Tree(
        rows=rows,
        counties=counties,
        county_paths=county_paths,
        county_towns=county_towns,
        towns=towns,
        town_paths=town_paths,
        village_codes=np.array(v_codes),
        village_paths=np.array(v_paths),
        village_county=np.array(v_county, dtype=np.int64),
        village_town=np.array(v_town, dtype=np.int64),
        village_lat=np.array(v_lat),
        village_lon=np.array(v_lon),
    )
    tree.county_villages = [np.flatnonzero(tree.village_county == i) for i in range(len(counties))]
    return tree


# ---- the issues ----------------------------------------------------------------------------------------


@dataclass
class Issues:
    """The full set as columns, in time order (row i has id i + 1)."""

    n: int
    now_us: int
    village: NDArray[np.int64]
    cols: dict[str, NDArray[Any]]
    masks: dict[str, NDArray[np.bool_]]  # a column's NULLs (False = NULL)


def _pick(rng: np.random.Generator, shares: Sequence[float], n: int) -> NDArray[np.int64]:
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def make_issues(tree: Tree, n: int, now: datetime, rng: np.random.Generator) -> Issues:
    now_us = int((now - PG_EPOCH) / timedelta(microseconds=1))
    # Where: counties differ in activity; villages within a county evenly.
    weights = rng.lognormal(0, 0.6, len(tree.counties))
    county = _pick(rng, weights, n)
    village = np.empty(n, dtype=np.int64)
    for i, members in enumerate(tree.county_villages):
        at = np.flatnonzero(county == i)
        village[at] = members[rng.integers(0, len(members), len(at))]
    # When: evenly over the last year, in time order.
    reported = np.sort(now_us - rng.integers(60_000_000, 365 * US_DAY, n))
    age_days = (now_us - reported) / US_DAY
    bucket = np.searchsorted(STATUS_AGES, age_days, side="right")
    status = np.empty(n, dtype=np.int64)
    for b, shares in enumerate(STATUS_BY_AGE):
        at = np.flatnonzero(bucket == b)
        status[at] = _pick(rng, shares, len(at))
    source = _pick(rng, [s[1] for s in SOURCES], n)
    starts_assigned = np.array([s[3] for s in SOURCES])[source]
    status[(status == 0) & starts_assigned] = 1  # inspectors' findings are never waiting to be verified
    category = _pick(rng, [c[2] for c in CATEGORIES], n)
    severity = _pick(rng, [s[1] for s in SEVERITIES], n)
    days = np.array([c[1] for c in CATEGORIES])[category, severity]

    is_reported, is_assigned, is_submitted, is_closed, is_rejected = (status == k for k in range(5))
    past_verify = ~(is_reported | is_rejected)
    verified = np.where(starts_assigned, reported, reported + rng.integers(US_DAY // 20, 2 * US_DAY, n))
    verified = np.minimum(verified, now_us - 30_000_000)
    assigned = verified
    span = (days * 1.4 * US_DAY).astype(np.int64)  # working days as calendar days, roughly
    deadline = assigned + span
    yellow = assigned + (span * 0.8).astype(np.int64)
    done = is_submitted | is_closed
    submitted = assigned + (span * rng.uniform(0.15, 1.05, n)).astype(np.int64)
    closed = submitted + rng.integers(US_DAY // 20, US_DAY, n)
    closed = np.minimum(closed, now_us - 10_000_000)
    submitted = np.minimum(submitted, closed - 5_000_000)
    submitted = np.maximum(submitted, assigned + 1_000_000)
    closed = np.maximum(closed, submitted + 1_000_000)
    rejected = np.minimum(reported + rng.integers(US_DAY // 20, 3 * US_DAY, n), now_us - 10_000_000)
    rejected = np.maximum(rejected, reported + 1_000_000)
    rework = np.where(past_verify, _pick(rng, [0.88, 0.10, 0.02], n), 0)
    extension = np.where(past_verify, _pick(rng, [0.95, 0.05], n), 0)
    on_account = is_assigned & (age_days > 90) & (rng.random(n) < 0.3)
    open_ = is_reported | is_assigned | is_submitted
    supervised = open_ & (rng.random(n) < 0.03)
    citizen = source == 2
    satisfied = is_closed & citizen & (rng.random(n) < 0.6)
    events = 1 + past_verify * (1 - starts_assigned) + is_rejected + done + is_closed + 2 * rework
    events = events + extension + on_account + supervised + satisfied
    updated = np.where(
        is_closed, closed, np.where(is_submitted, submitted, np.where(is_rejected, rejected, assigned))
    )
    updated = np.where(is_reported, reported, updated)
    updated = np.maximum(updated, reported)

    # Codes: per county and (China) year, numbered in time order.
    days_1970 = (reported + CHINA_US) // US_DAY + 10_957  # datetime64 counts from 1970, PostgreSQL from 2000
    year = days_1970.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    key = county * 100 + (year - 2000)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_key)) + 1]
    lengths = np.diff(np.r_[starts, n])
    number = np.empty(n, dtype=np.int64)
    number[order] = np.arange(n) - np.repeat(starts, lengths) + 1

    lat = tree.village_lat[village] + rng.uniform(-0.004, 0.004, n)
    lon = tree.village_lon[village] + rng.uniform(-0.005, 0.005, n)
    has_position = rng.random(n) < 0.9
    cols: dict[str, NDArray[Any]] = {
        "county": county,
        "year": year,
        "number": number,
        "category": category,
        "severity": severity,
        "source": source,
        "status": status,
        "reported_at": reported,
        "verified_at": verified,
        "assigned_at": assigned,
        "deadline": deadline,
        "yellow_at": yellow,
        "submitted_at": submitted,
        "closed_at": closed,
        "closed_late": closed > deadline,
        "rejected_at": rejected,
        "reject_reason": _pick(rng, [0.5, 0.25, 0.15, 0.1], n),
        "rework_count": rework,
        "extension_count": extension,
        "on_account": on_account,
        "account_target": np.full(n, now_us + 90 * US_DAY),
        "supervised": supervised,
        "satisfaction": rng.integers(3, 6, n),
        "event_count": events,
        "updated_at": updated,
        "latitude": lat,
        "longitude": lon,
        "description": rng.integers(0, len(DESCRIPTIONS), n),
        "address": rng.integers(0, len(ADDRESSES), n),
        "reporter": rng.integers(1, 40_000, n),
        "submitter": rng.integers(1, 40_000, n),
        "has_before": rng.random(n) < 0.75,
    }
    masks = {
        "verified_at": past_verify & ~starts_assigned,
        "assigned_at": past_verify,
        "deadline": past_verify,
        "yellow_at": past_verify,
        "responsible": past_verify,
        "submitted_at": done,
        "submitter": done,
        "closed_at": is_closed,
        "closed_late": is_closed,
        "rejected_at": is_rejected,
        "reject_reason": is_rejected,
        "account": on_account,
        "satisfaction": satisfied,
        "position": has_position,
    }
    return Issues(n=n, now_us=now_us, village=village, cols=cols, masks=masks)


ISSUE_COLUMNS = [
    "id", "code", "category", "severity", "source", "status", "region_code", "region_path", "county_code",
    "responsible_region_code", "responsible_region_path", "responsible_user_id", "description", "address",
    "latitude", "longitude", "fields", "before_photo_ids", "after_photo_ids", "evidence_flags", "reporter",
    "reporter_role", "submitter", "reported_at", "verified_at", "assigned_at", "deadline", "yellow_at",
    "submitted_at", "closed_at", "closed_late", "rejected_at", "reject_reason", "rework_count",
    "extension_count", "extension_pending", "extension_reason", "extension_until", "on_account",
    "account_plan", "account_target", "supervised", "probable_duplicate_of", "duplicate_of", "recurrence_of",
    "satisfaction", "satisfaction_comment", "last_event_hash", "event_count", "version", "updated_at",
]  # fmt: skip


def issue_records(tree: Tree, issues: Issues, rows: NDArray[np.int64]) -> list[tuple[Any, ...]]:
    """COPY records of the issues at `rows` (timestamps as microseconds since 2000, see `_tuple_codecs`)."""
    c, m = issues.cols, issues.masks
    n = len(rows)

    def values(name: str, mask: str | None = None, table_: Sequence[Any] | None = None) -> list[Any]:
        raw = c[name][rows]
        out = np.asarray(table_, dtype=object)[raw] if table_ is not None else raw.astype(object)
        if mask is not None:
            out = out.copy()
            out[~m[mask][rows]] = None
        return list(out.tolist()) if table_ is None else list(out)

    village = issues.village[rows]
    codes = tree.village_codes[village].tolist()
    paths = tree.village_paths[village].tolist()
    county_codes = np.asarray(tree.counties, dtype=object)[c["county"][rows]].tolist()
    ids = (rows + 1).tolist()
    code = [
        f"{cc}-{y}-{k:06d}"
        for cc, y, k in zip(county_codes, c["year"][rows].tolist(), c["number"][rows].tolist(), strict=True)
    ]
    assigned_mask = m["responsible"][rows]
    responsible_code = np.where(assigned_mask, np.asarray(codes, dtype=object), None).tolist()
    responsible_path = np.where(assigned_mask, np.asarray(paths, dtype=object), None).tolist()
    position = m["position"][rows]
    lat = np.where(position, c["latitude"][rows].astype(object), None).tolist()
    lon = np.where(position, c["longitude"][rows].astype(object), None).tolist()
    before = [
        f'["{i:032x}"]' if b else "[]" for i, b in zip(ids, c["has_before"][rows].tolist(), strict=True)
    ]
    done = m["submitter"][rows].tolist()
    after = [f'["{i + 10**12:032x}"]' if d else "[]" for i, d in zip(ids, done, strict=True)]
    source = c["source"][rows]
    reporter_role = [SOURCES[s][2] for s in source.tolist()]
    reporter = [
        f"client:integration-{r % 20}" if role == "integration" else f"user:{r}"
        for r, role in zip(c["reporter"][rows].tolist(), reporter_role, strict=True)
    ]
    submitter = [f"user:{s}" if d else None for s, d in zip(c["submitter"][rows].tolist(), done, strict=True)]
    account = m["account"][rows]
    plan = np.where(account, "列入明年村庄建设计划", None).tolist()
    hashes = [(i * 0x9E3779B97F4A7C15 % (1 << 64)).to_bytes(8, "big").hex() * 4 for i in ids]
    events = c["event_count"][rows].tolist()
    columns: list[list[Any]] = [
        ids,
        code,
        values("category", table_=[x[0] for x in CATEGORIES]),
        values("severity", table_=[x[0] for x in SEVERITIES]),
        values("source", table_=[x[0] for x in SOURCES]),
        values("status", table_=STATUSES),
        codes,
        paths,
        county_codes,
        responsible_code,
        responsible_path,
        [None] * n,
        values("description", table_=DESCRIPTIONS),
        values("address", table_=ADDRESSES),
        lat,
        lon,
        ["{}"] * n,
        before,
        after,
        ["[]"] * n,
        reporter,
        reporter_role,
        submitter,
        values("reported_at"),
        values("verified_at", "verified_at"),
        values("assigned_at", "assigned_at"),
        values("deadline", "deadline"),
        values("yellow_at", "yellow_at"),
        values("submitted_at", "submitted_at"),
        values("closed_at", "closed_at"),
        values("closed_late", "closed_late"),
        values("rejected_at", "rejected_at"),
        values("reject_reason", "reject_reason", REJECT_REASONS),
        values("rework_count"),
        values("extension_count"),
        [False] * n,
        [None] * n,
        [None] * n,
        values("on_account"),
        plan,
        values("account_target", "account"),
        values("supervised"),
        [None] * n,
        [None] * n,
        [None] * n,
        values("satisfaction", "satisfaction"),
        [None] * n,
        hashes,
        events,
        events,
        values("updated_at"),
    ]
    assert len(columns) == len(ISSUE_COLUMNS)
    # Masked object arrays give None; `values(..., table_)` with a mask came through np.asarray: fix those.
    return list(zip(*columns, strict=True))


async def _tuple_codecs(conn: asyncpg.Connection) -> None:
    """Timestamps go to COPY as microseconds since 2000-01-01 (PostgreSQL's own form): no datetime objects."""
    for name in ("timestamptz", "timestamp"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=lambda us: (us,), decoder=lambda t: t[0], format="tuple"
        )


# ---- the database --------------------------------------------------------------------------------------


def pg_dsn(db: str) -> str:
    return f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{db}"


def sa_url(db: str) -> str:
    return f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{db}"


async def admin_sql(sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn("postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def database_exists(db: str) -> bool:
    conn = await asyncpg.connect(pg_dsn("postgres"))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db))
    finally:
        await conn.close()


async def fill_regions(db: str, tree: Tree) -> float:
    start = time.perf_counter()
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        now = datetime.now(UTC)
        records = [
            (i, code, name, level, parent, path, now, now) for i, code, name, level, parent, path in tree.rows
        ]
        await conn.execute("SET session_replication_role = replica")  # parents come first anyway
        await conn.copy_records_to_table(
            "regions",
            records=records,
            columns=["id", "code", "name", "level", "parent_id", "path", "created_at", "updated_at"],
        )
        await conn.execute("SELECT setval('regions_id_seq', (SELECT max(id) FROM regions))")
        await conn.execute("ANALYZE regions")
    finally:
        await conn.close()
    return time.perf_counter() - start


async def fill_issues(
    db: str, tree: Tree, issues: Issues, rows: NDArray[np.int64], chunk: int = 50_000
) -> float:
    """COPY the issues at `rows`, then the id sequence, the code counters and VACUUM ANALYZE."""
    start = time.perf_counter()
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        await _tuple_codecs(conn)
        for at in range(0, len(rows), chunk):
            part = rows[at : at + chunk]
            await conn.copy_records_to_table(
                "issues", records=issue_records(tree, issues, part), columns=ISSUE_COLUMNS
            )
            print(f"    {at + len(part):,} / {len(rows):,} issues", flush=True)
        await conn.execute("SELECT setval('issues_id_seq', $1)", issues.n + 1)
        c = issues.cols
        counters: dict[tuple[str, int], int] = {}
        for county, year, number in zip(
            c["county"].tolist(), c["year"].tolist(), c["number"].tolist(), strict=True
        ):
            key = (tree.counties[county], year)
            if number > counters.get(key, 0):
                counters[key] = number
        await conn.execute("DELETE FROM issue_counters")
        await conn.copy_records_to_table(
            "issue_counters",
            records=[(county, year, last) for (county, year), last in counters.items()],
            columns=["county_code", "year", "last_number"],
        )
        await conn.execute("VACUUM (ANALYZE) issues")
        await conn.execute("VACUUM (ANALYZE) issue_counters")
    finally:
        await conn.close()
    return time.perf_counter() - start


async def count_issues(db: str) -> int:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM issues"))
    finally:
        await conn.close()


async def count_since(db: str, since: datetime) -> int:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM issues WHERE reported_at >= $1", since))
    finally:
        await conn.close()


async def table_sizes(db: str) -> dict[str, int]:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND (c.relname = 'issues' OR c.relname LIKE 'ix_issues%' "
            "OR c.relname IN ('pk_issues', 'uq_issues_code'))"
        )
        return {r[0]: int(r[1]) for r in rows}
    finally:
        await conn.close()


async def cleanup_created(db: str, above: int) -> int:
    """Delete what the create phases added (ids above the generated set; the code counters run on)."""
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        await conn.execute("DELETE FROM issue_events WHERE issue_id > $1", above)
        await conn.execute("DELETE FROM outbox")
        deleted = await conn.fetchval(
            "WITH d AS (DELETE FROM issues WHERE id > $1 RETURNING 1) SELECT count(*) FROM d", above
        )
        await conn.execute("VACUUM (ANALYZE) issues")
        return int(deleted)
    finally:
        await conn.close()


async def backend_pids(db: str) -> list[int]:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        me = await conn.fetchval("SELECT pg_backend_pid()")
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> $2", db, me)
        return [int(r[0]) for r in rows]
    finally:
        await conn.close()


def backends_cpu(pids: Sequence[int]) -> dict[int, float]:
    """CPU ms so far of each PostgreSQL backend (same machine: its /proc)."""
    out: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            out[pid] = cpu_ms(pid)
    return out


class DbCpu:
    """CPU of the database's backends over a phase; backends opened meanwhile count from zero."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.start = backends_cpu(asyncio.run(backend_pids(db)))

    def used(self) -> float:
        now = backends_cpu(asyncio.run(backend_pids(self.db)))
        return sum(ms - self.start.get(pid, 0.0) for pid, ms in now.items())


def migrate(db: str) -> None:
    """`services.kit.migrations.upgrade("issues", url)` as the service's checkout has it (`--service-root`)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from services.kit.migrations import upgrade; upgrade('issues', {sa_url(db)!r})",
        ],
        cwd=SERVICE_ROOT,
        check=True,
    )


def prepare_database(db: str, tree: Tree, issues: Issues, size: int, ids: NDArray[np.int64]) -> float:
    """`db` with the tree and every (n / size)-th issue: reused when it holds them (migrated to head),
    else made afresh. Answers the seconds the fill took (0 when reused)."""
    if asyncio.run(database_exists(db)):
        have = asyncio.run(count_issues(db))
        if have == size:
            print(f"reusing {db} ({have:,} issues); migrations to head …", flush=True)
            t0 = time.perf_counter()
            migrate(db)
            print(f"  migrated in {time.perf_counter() - t0:.1f} s", flush=True)
            return 0.0
        print(f"{db} holds {have:,} issues, not {size:,}: made afresh", flush=True)
        asyncio.run(admin_sql(f'DROP DATABASE "{db}" WITH (FORCE)'))
    asyncio.run(admin_sql(f'CREATE DATABASE "{db}"'))
    migrate(db)
    seconds = asyncio.run(fill_regions(db, tree))
    rows = np.flatnonzero(ids % (issues.n // size) == 0)
    print(f"filling {db} with {len(rows):,} issues …", flush=True)
    return seconds + asyncio.run(fill_issues(db, tree, issues, rows))


# ---- the service ---------------------------------------------------------------------------------------


@dataclass
class Service(ServiceProcess):
    db: str = ""


SERVICE_ROOT = ROOT  # set from --service-root: the checkout the service runs from


def start_service(factory: str, db: str, work: Path, keys: Path) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUANZHI_")}
    env.update(
        {
            "HUANZHI_ISSUES_ENVIRONMENT": "development",
            "HUANZHI_ISSUES_DATA_DIR": str(work),
            "HUANZHI_ISSUES_DATABASE_URL": sa_url(db),
            "HUANZHI_ISSUES_SIGNING_KEYS_DIR": str(keys),
            "HUANZHI_ISSUES_TOKEN_ISSUER": url,
            "HUANZHI_ISSUES_MEDIA_URL": "",
            "HUANZHI_ISSUES_SEED_DEMO": "false",
            "HUANZHI_ISSUES_LOG_JSON": "false",
            "HUANZHI_ISSUES_LOG_LEVEL": "WARNING",
            "MALLOC_ARENA_MAX": "2",
        }
    )
    log = work / f"service-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                factory,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--no-server-header",
                "--h11-max-incomplete-event-size",
                str(64 * 1024 + 8192),
            ],
            cwd=SERVICE_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = Service(process, url, log, db)
    try:
        wait_healthy(process, url, log, seconds=90, path="/readyz")
    except (RuntimeError, TimeoutError):
        service.stop()
        raise
    return service


def token(keyring: KeyRing, issuer: str, role: Role, region: str, path: str, subject: str) -> str:
    return mint_access_token(
        keyring,
        issuer=issuer,
        audience=AUDIENCE,
        lifetime_seconds=3600 * 6,
        subject=subject,
        role=role,
        region=region,
        region_path=path,
        scopes=ROLE_SCOPES[role],
    ).access_token


# ---- latency -------------------------------------------------------------------------------------------


@dataclass
class Query:
    name: str
    path: str
    params: dict[str, Any] | Callable[[], dict[str, Any]]
    headers: dict[str, str]
    times: list[float] = field(default_factory=list)
    service_cpu: float = 0.0
    db_cpu: float = 0.0
    rows: int | None = None
    status: int | None = None


def measure_latency(service: Service, queries: list[Query], requests: int, rounds: int = 4) -> None:
    """Each query `requests` times, one request at a time, in `rounds` rounds interleaving the queries."""
    with httpx.Client(base_url=service.url, timeout=60.0) as client:
        for q in queries:  # warm up: plans, the JWKS cache, the connection pool
            for _ in range(10):
                answer = client.get(q.path, params=_params(q), headers=q.headers)
            q.status = answer.status_code
            if answer.status_code == 200:
                body = answer.json()
                q.rows = len(body["items"]) if isinstance(body, dict) and "items" in body else None
            else:
                print(f"  {q.name}: HTTP {answer.status_code} {answer.text[:300]}", flush=True)
        per_round = max(1, requests // rounds)
        for _ in range(rounds):
            for q in queries:
                if q.status != 200:
                    continue
                params = [_params(q) for _ in range(per_round)]
                cpu0, db_cpu = cpu_ms(service.pid), DbCpu(service.db)
                for p in params:
                    t0 = time.perf_counter()
                    answer = client.get(q.path, params=p, headers=q.headers)
                    q.times.append((time.perf_counter() - t0) * 1000)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{q.name}: HTTP {answer.status_code} {answer.text[:300]}")
                q.service_cpu += cpu_ms(service.pid) - cpu0
                q.db_cpu += db_cpu.used()


def _params(q: Query) -> dict[str, Any]:
    return q.params() if callable(q.params) else q.params


# ---- create throughput ---------------------------------------------------------------------------------

WRK_SCRIPT = """
local tokens = {%(tokens)s}
local villages = {%(villages)s}
local cats = {%(cats)s}
local descriptions = {%(descriptions)s}
local n = 0
local headers = {["Content-Type"] = "application/json"}
function request()
  n = n + 1
  local k = math.random(#tokens)
  local v = villages[k][math.random(#villages[k])]
  headers["Authorization"] = "Bearer " .. tokens[k]
  local body = string.format(
    '{"category":"%%s","region":"%%s","source":"inspection","severity":"normal","description":"%%s %%d",' ..
    '"latitude":%%.6f,"longitude":%%.6f,"address":"村东首，村道北侧"}',
    cats[math.random(#cats)], v[1], descriptions[math.random(#descriptions)], n,
    v[2] + (math.random() - 0.5) * 0.004, v[3] + (math.random() - 0.5) * 0.005)
  return wrk.format("POST", "%(path)s", headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"socket_errors":%%d,"p50_us":%%d,"p95_us":%%d,"p99_us":%%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass
class Phase:
    name: str
    path: str
    runs: list[dict[str, float]] = field(default_factory=list)

    def mean(self, key: str) -> float:
        return statistics.fmean(r[key] for r in self.runs) if self.runs else float("nan")

    def spread(self, key: str) -> str:
        values = [r[key] for r in self.runs]
        return f"{min(values):.0f}–{max(values):.0f}" if values else "–"


def wrk_script(
    work: Path, path: str, tokens: list[str], villages: list[list[tuple[str, float, float]]]
) -> Path:
    script = work / f"wrk{path.replace('/', '_')}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "tokens": ",".join(f'"{t}"' for t in tokens),
            "villages": ",".join(
                "{" + ",".join(f'{{"{c}",{la:.6f},{lo:.6f}}}' for c, la, lo in vs) + "}" for vs in villages
            ),
            "cats": ",".join(f'"{c}"' for c in PLAIN_CATEGORIES),
            "descriptions": ",".join(f'"{d}"' for d in DESCRIPTIONS[:6]),
            "path": path,
        },
        encoding="utf-8",
    )
    return script


def run_wrk(service: Service, script: Path, seconds: float, concurrency: int) -> dict[str, float]:
    cpu0, db, t0 = cpu_ms(service.pid), DbCpu(service.db), time.perf_counter()
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds:g}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            service.url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    wall = time.perf_counter() - t0
    db_cpu = db.used()
    service_cpu = cpu_ms(service.pid) - cpu0
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk said:\n{done.stdout}\n{done.stderr}")
    result = json.loads(line[4:])
    n = max(1, result["requests"])
    if result["status_errors"] or result["socket_errors"]:
        print(
            f"  !! {result['status_errors']} HTTP errors, {result['socket_errors']} socket errors", flush=True
        )
    return {
        "requests": result["requests"],
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50": result["p50_us"] / 1000,
        "p95": result["p95_us"] / 1000,
        "service_cpu": service_cpu / n,
        "db_cpu": db_cpu / n,
        "errors": result["status_errors"] + result["socket_errors"],
        "wall": wall,
    }


def measure_creates(
    service: Service,
    work: Path,
    tokens: list[str],
    villages: list[list[tuple[str, float, float]]],
    seconds: float,
    concurrency: int,
    rounds: int,
    profile: Path | None = None,
) -> list[Phase]:
    phases = [
        Phase("raw asyncpg INSERT (bare)", "/bench/insert/raw"),
        Phase("ORM INSERT (bare)", "/bench/insert/orm"),
        Phase("full POST /v1/issues", "/v1/issues"),
    ]
    scripts = {p.path: wrk_script(work, p.path, tokens, villages) for p in phases}
    for p in phases:  # warm up each endpoint briefly (pools, prepared statements)
        run_wrk(service, scripts[p.path], 1, concurrency)
    for _ in range(rounds):
        for p in phases:
            p.runs.append(run_wrk(service, scripts[p.path], seconds, concurrency))
            print(f"    {p.name}: {p.runs[-1]['rps']:.0f} req/s", flush=True)
    if profile is not None:  # not counted: the sampler costs the service a little CPU
        with profiled(service, profile / f"create-{service.db}.txt"):
            run_wrk(service, scripts["/v1/issues"], seconds, concurrency)
    return phases


@contextlib.contextmanager
def profiled(service: Service, out: Path) -> Iterator[None]:
    """`py-spy record` on the service for the block: its collapsed stacks (one line a stack, then the count of
    samples) go to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(service.pid), "--rate", "250", "--format", "raw", "--nonblocking",
         "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has and stops
        spy.wait(timeout=60)
        print(f"    collapsed stacks: {out}", flush=True)


# ---- export memory -------------------------------------------------------------------------------------


def measure_export(
    service: Service, path: str, params: dict[str, Any], headers: dict[str, str]
) -> dict[str, float]:
    reset = reset_peak(service.pid)
    before = memory_mb(service.pid)["VmRSS"]
    highest = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal highest
        while not stop.is_set():
            highest = max(highest, memory_mb(service.pid)["VmRSS"])
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    size = 0
    with (
        httpx.Client(base_url=service.url, timeout=600.0) as client,
        client.stream("GET", path, params=params, headers=headers) as answer,
    ):
        status = answer.status_code
        for chunk in answer.iter_bytes():
            size += len(chunk)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    mem = memory_mb(service.pid)
    return {
        "status": status,
        "bytes": size,
        "seconds": wall,
        "rss_before": before,
        "rss_peak_sampled": highest,
        "vmhwm": mem["VmHWM"] if reset else float("nan"),
    }


# ---- EXPLAIN -------------------------------------------------------------------------------------------


SQL_REPEATS = 200


async def explain_all(
    db: str, county: str, county_path: str, category: str, stats_window: tuple[datetime, datetime] | None
) -> list[str]:
    """The plans of the statements the service's own code sends (captured in this process) for the county's
    list queries and, where the service has them, its statistics; and each statement timed alone."""
    from sqlalchemy import event

    from services.issues.cases.rules import Status
    from services.issues.cases.service import IssueFilters, list_issues
    from services.kit.auth import Caller
    from services.kit.db import Database
    from services.kit.identity import Subject
    from services.kit.pagination import PageParams

    database = Database(sa_url(db))
    caller = Caller(
        subject=Subject.parse("user:900001"),  # type: ignore[arg-type]
        role=Role.admin,
        region=county,
        region_path=county_path,
        scopes=frozenset(ROLE_SCOPES[Role.admin]),
    )
    seen: list[tuple[str, Any]] = []
    capturing = [False]

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if capturing[0] and ("FROM issues" in statement or "JOIN issues" in statement):
            seen.append((statement, parameters))

    async def listed(filters: IssueFilters, cursor: str | None) -> tuple[list[tuple[str, Any]], str | None]:
        seen.clear()
        capturing[0] = True
        try:
            async with database.transaction() as session:
                page = await list_issues(session, caller, filters, PageParams(limit=50, cursor=cursor))
        finally:
            capturing[0] = False
        return list(seen), page.next_cursor

    async def counted(start: datetime, end: datetime) -> list[tuple[str, Any]]:
        from services.issues.stats.rules import GroupBy
        from services.issues.stats.service import StatsQuery, rectification

        seen.clear()
        capturing[0] = True
        try:
            async with database.transaction() as session:
                query = StatsQuery(region=county, start=start, end=end, group_by=GroupBy.child)
                await rectification(session, caller, query, PageParams(limit=50, cursor=None))
        finally:
            capturing[0] = False
        return list(seen)

    out: list[str] = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        filtered_, _ = await listed(IssueFilters(status=[Status.assigned], category=[category]), None)
        first, cursor = await listed(IssueFilters(), None)
        after, _ = await listed(IssueFilters(), cursor)
        cases = [
            ("list: county, status=assigned, top category", filtered_),
            ("list: county, first page, no filter", first),
            ("list: county, the page after it", after),
        ]
        if stats_window is not None:
            cases.append(("statistics: county, last month, group_by=child", await counted(*stats_window)))
        for label, statements in cases:
            out.append(f"### {label}\n")
            async with database.transaction() as session:
                conn = await session.connection()
                await conn.exec_driver_sql("SET LOCAL jit = off")  # as the statistics set it
                for statement, parameters in statements:
                    plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                    out.append("```\n" + " ".join(statement.split()) + "\n-- " + repr(parameters) + "\n")
                    out.append("\n".join(r[0] for r in plan.all()) + "\n```\n")
                    # The statement alone, as the service sends it (prepared, warm), round trip and rows.
                    times = []
                    for _ in range(SQL_REPEATS):
                        t0 = time.perf_counter()
                        (await conn.exec_driver_sql(statement, parameters)).all()
                        times.append((time.perf_counter() - t0) * 1000)
                    out.append(
                        f"The statement alone, {SQL_REPEATS} times from this process: p50 "
                        f"{percentile(times, 50):.2f} ms, p95 {percentile(times, 95):.2f} ms (load {loadavg()}).\n"
                    )
    finally:
        await database.dispose()
    return out


# ---- the run -------------------------------------------------------------------------------------------


def stats_window(now: datetime) -> tuple[datetime, datetime]:
    """The last whole month as the route reads `from` and `to` dates: midnights in Beijing."""
    china = timezone(timedelta(hours=8))
    end = now.astimezone(china).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (end - timedelta(days=1)).replace(day=1), end


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class SizeResult:
    size: int
    fill_seconds: float
    load_before: str
    load_after: str = ""
    queries: list[Query] = field(default_factory=list)
    stats: list[Query] = field(default_factory=list)
    stats_note: str = ""
    creates: list[Phase] = field(default_factory=list)
    export: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    export_note: str = ""
    sizes: dict[str, int] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=200, help="per list query and size")
    parser.add_argument("--seconds", type=float, default=8.0, help="per create phase")
    parser.add_argument("--rounds", type=int, default=2, help="create rounds (each phase once a round)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", default="hz_bench_issues")
    parser.add_argument("--keep", action="store_true", help="keep the database (a later run reuses it)")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument(
        "--service-root",
        type=Path,
        default=ROOT,
        help="run the service from this checkout (it needs bench/_issues_app.py too)",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["list", "stats", "create", "export"])
    parser.add_argument(
        "--profile",
        type=Path,
        help="after the create rounds, one more full-create phase under `py-spy record` (py-spy on the PATH): "
        "its collapsed stacks go to this folder, one file per size",
    )
    args = parser.parse_args()
    global SERVICE_ROOT
    SERVICE_ROOT = args.service_root.resolve()
    sizes = sorted(args.sizes)
    biggest = sizes[-1]
    if any(biggest % s for s in sizes):
        raise SystemExit("each size must divide the largest")
    if "create" not in args.skip and shutil.which("wrk") is None:
        raise SystemExit("wrk is not on the PATH (apt-get install wrk), or pass --skip create")
    if args.profile is not None and shutil.which("py-spy") is None:
        raise SystemExit("--profile needs py-spy on the PATH (e.g. `uv tool install py-spy`)")

    rng = np.random.default_rng(SEED)
    t0 = time.perf_counter()
    tree = make_tree(rng)
    now = datetime.now(UTC).replace(microsecond=0)
    issues = make_issues(tree, biggest, now, rng)
    print(
        f"generated {len(tree.rows):,} regions ({len(tree.counties)} counties, {len(tree.towns):,} towns, "
        f"{len(tree.village_codes):,} villages) and {biggest:,} issues in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    work = Path(tempfile.mkdtemp(prefix="hz-bench-issues-"))
    keys = work / "keys"
    keyring = KeyRing.from_folder(keys, generate_if_empty=True)
    ids = np.arange(biggest, dtype=np.int64) + 1

    # The measured places: a busy county (90th percentile of issues) and its busiest town.
    per_county = np.bincount(issues.cols["county"], minlength=len(tree.counties))
    county_i = int(np.argsort(per_county)[int(len(per_county) * 0.9)])
    county, county_path = tree.counties[county_i], tree.county_paths[county_i]
    in_county = issues.cols["county"] == county_i
    towns_of = tree.village_town[issues.village[in_county]]
    town_i = int(np.bincount(towns_of).argmax())
    town, town_path = tree.towns[town_i], tree.town_paths[town_i]
    top_category = CATEGORIES[int(np.bincount(issues.cols["category"]).argmax())][0]
    print(f"county {county} ({per_county[county_i]:,} of {biggest:,} issues), town {town}", flush=True)
    # Load from 16 county inspectors, each reporting in 40 villages of its own county.
    create_counties = [int(i) for i in np.argsort(per_county)[:: max(1, len(per_county) // 16)][:16]]
    create_villages = [
        [
            (str(tree.village_codes[v]), float(tree.village_lat[v]), float(tree.village_lon[v]))
            for v in tree.county_villages[i][:40]
        ]
        for i in create_counties
    ]

    results: list[SizeResult] = []
    explain_out: list[str] = []
    try:
        for size in sizes:
            db = f"{args.db}_{size}"
            fill = prepare_database(db, tree, issues, size, ids)
            result = SizeResult(size=size, fill_seconds=fill, load_before=loadavg())
            result.sizes = asyncio.run(table_sizes(db))
            results.append(result)
            print(f"size {size:,} (load {result.load_before}) …", flush=True)

            service = start_service("bench._issues_app:create_app", db, work, keys)
            try:
                iss = service.url
                county_admin = {
                    "Authorization": "Bearer "
                    + token(keyring, iss, Role.admin, county, county_path, "user:900001")
                }
                town_officer = {
                    "Authorization": "Bearer "
                    + token(keyring, iss, Role.officer, town, town_path, "user:900002")
                }
                paths = httpx.get(iss + "/openapi.json", timeout=10).json()["paths"]
                if "list" not in args.skip:
                    first = httpx.get(
                        iss + "/v1/issues", params={"limit": 50}, headers=county_admin, timeout=30
                    ).json()
                    cursor = first["next_cursor"]
                    result.queries = [
                        Query("county: status=assigned, top category", "/v1/issues",
                              {"status": "assigned", "category": top_category, "limit": 50}, county_admin),
                        Query("county: first page, no filter", "/v1/issues", {"limit": 50}, county_admin),
                        Query("county: the page after it (cursor)", "/v1/issues",
                              {"limit": 50, "cursor": cursor} if cursor else {"limit": 50}, county_admin),
                        Query("town: status=assigned", "/v1/issues", {"status": "assigned", "limit": 50}, town_officer),
                    ]  # fmt: skip
                    if args.profile is not None:
                        with profiled(service, args.profile / f"list-{db}.txt"):
                            measure_latency(service, result.queries, args.requests)
                    else:
                        measure_latency(service, result.queries, args.requests)
                if "stats" not in args.skip:
                    if "/v1/stats/rectification" in paths:
                        month_start, month_end = stats_window(now)
                        result.stats = [
                            Query("county last month, group_by=child", "/v1/stats/rectification",
                                  {"region": county, "from": month_start.date().isoformat(),
                                   "to": month_end.date().isoformat(), "group_by": "child"}, county_admin),
                        ]  # fmt: skip
                        measure_latency(service, result.stats, args.requests)
                    else:
                        result.stats_note = "not yet measured: the service has no /v1/stats/rectification"
                if "export" not in args.skip:
                    if "/v1/issues/export" in paths:
                        province = {
                            "Authorization": "Bearer "
                            + token(keyring, iss, Role.admin, "37", "/37/", "user:900003")
                        }
                        result.export = export_runs(service, province, size)
                    else:
                        result.export_note = "not yet measured: the service has no /v1/issues/export"
                if "create" not in args.skip:
                    inspectors = [
                        token(
                            keyring,
                            iss,
                            Role.inspector,
                            tree.counties[i],
                            tree.county_paths[i],
                            f"user:{910000 + i}",
                        )
                        for i in create_counties
                    ]
                    print("  creates …", flush=True)
                    result.creates = measure_creates(
                        service,
                        work,
                        inspectors,
                        create_villages,
                        args.seconds,
                        args.concurrency,
                        args.rounds,
                        args.profile,
                    )
            finally:
                service.stop()
                result.load_after = loadavg()
            if result.creates:
                removed = asyncio.run(cleanup_created(db, biggest))
                print(f"  removed {removed:,} created issues", flush=True)
        if args.explain:
            has_stats = any(q.name.startswith("county last month") for r in results for q in r.stats)
            explain_out = asyncio.run(
                explain_all(
                    f"{args.db}_{biggest}",
                    county,
                    county_path,
                    top_category,
                    stats_window(now) if has_stats else None,
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            for size in sizes:
                asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{args.db}_{size}" WITH (FORCE)'))
    report(results, args, county, per_county[county_i], town, top_category, explain_out)


def export_runs(service: Service, headers: dict[str, str], size: int) -> list[tuple[str, dict[str, float]]]:
    """The province's ledger (its admin's token) over the most recent days that hold ~10⁴ and ~10⁵ issues."""
    runs = []
    for rows in (10_000, 100_000):
        if rows > size:
            continue
        since = datetime.now(UTC) - timedelta(days=365 * rows / size)
        params = {"format": "xlsx", "reported_from": since.isoformat()}
        result = measure_export(service, "/v1/issues/export", params, headers)
        result["rows"] = asyncio.run(count_since(service.db, since))
        runs.append((f"~{rows:,} rows", result))
    return runs


def report(
    results: list[SizeResult],
    args: argparse.Namespace,
    county: str,
    county_issues: int,
    town: str,
    category: str,
    explain_out: list[str],
) -> None:
    print()
    print(f"## bench.issues_lifecycle — {machine()}")
    print()
    print(f"County {county} ({county_issues:,} issues at 10⁶), town {town}, category {category}.")
    print()
    rows = []
    for r in results:
        total = sum(r.sizes.values())
        rows.append(
            [
                f"{r.size:,}",
                f"{r.fill_seconds:.0f} s" if r.fill_seconds else "reused",
                f"{r.sizes.get('issues', 0) / 2**20:.0f}",
                f"{(total - r.sizes.get('issues', 0)) / 2**20:.0f}",
                f"{r.load_before} → {r.load_after}",
            ]
        )
    print(table(["issues", "fill (COPY + VACUUM ANALYZE)", "table MiB", "indexes MiB", "load average"], rows))
    print()
    rows = []
    for r in results:
        for q in r.queries + r.stats:
            n = max(1, len(q.times))
            rows.append(
                [
                    f"{r.size:,}: {q.name}",
                    q.rows if q.rows is not None else "–",
                    len(q.times),
                    percentile(q.times, 50),
                    percentile(q.times, 95),
                    max(q.times) if q.times else float("nan"),
                    q.service_cpu / n,
                    q.db_cpu / n,
                ]
            )
        if r.stats_note:
            rows.append([f"{r.size:,}: statistics", "–", 0, "–", "–", "–", "–", r.stats_note])
    print(
        table(
            ["latency, ms (one at a time)", "rows", "n", "p50", "p95", "max", "service CPU", "PG CPU"], rows
        )
    )
    print()
    rows = []
    for r in results:
        for p in r.creates:
            rows.append(
                [
                    f"{r.size:,}: {p.name}",
                    f"{p.mean('rps'):.0f} ({p.spread('rps')})",
                    p.mean("p50"),
                    p.mean("p95"),
                    p.mean("service_cpu"),
                    p.mean("db_cpu"),
                    int(sum(x["errors"] for x in p.runs)),
                ]
            )
        if r.creates:
            by = {p.path: p for p in r.creates}
            full, orm, raw = by["/v1/issues"], by["/bench/insert/orm"], by["/bench/insert/raw"]
            rows.append(
                [
                    f"{r.size:,}: full / ORM, full / raw",
                    f"{full.mean('rps') / orm.mean('rps'):.2f}×, {full.mean('rps') / raw.mean('rps'):.2f}×",
                    "",
                    "",
                    f"{orm.mean('service_cpu') / full.mean('service_cpu'):.2f}×, "
                    f"{raw.mean('service_cpu') / full.mean('service_cpu'):.2f}×",
                    "",
                    "",
                ]
            )
    print(
        table(
            [
                f"create, {args.concurrency} connections, {args.rounds}×{args.seconds:g} s",
                "req/s (runs)",
                "p50 ms",
                "p95 ms",
                "service CPU ms/req",
                "PG CPU ms/req",
                "errors",
            ],
            rows,
        )
    )
    print()
    rows = []
    for r in results:
        for _label, e in r.export:
            rows.append(
                [
                    f"{r.size:,}: {e['rows']:,.0f} rows",
                    e["status"],
                    f"{e['bytes'] / 2**20:.1f}",
                    e["seconds"],
                    e["rss_before"],
                    e["rss_peak_sampled"],
                    e["vmhwm"],
                ]
            )
        if r.export_note:
            rows.append([f"{r.size:,}: export", "–", "–", "–", "–", "–", r.export_note])
    print(table(["export xlsx", "HTTP", "MiB", "s", "RSS before MB", "RSS peak (sampled)", "VmHWM"], rows))
    if explain_out:
        print()
        print("\n".join(explain_out))


if __name__ == "__main__":
    main()
