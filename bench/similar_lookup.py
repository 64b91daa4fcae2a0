"""Reuse-candidate lookup latency at 10⁵ and 10⁶ stored perceptual hashes, on PostgreSQL (and SQLite).

Run: `uv run python -m bench.similar_lookup [--sizes 100000 1000000] [--queries 200] [--seconds 60]
[--hash-model balanced|uniform] [--no-sqlite] [--sql-filter]`. Needs PostgreSQL on 127.0.0.1:5432 (user
postgres, trust auth, as the tests do); it creates and drops its own database `hz_bench_<pid>`. Three to five
minutes with the defaults (most of it filling 10⁶ hashes).

The database is built by the media migrations, then filled by COPY with photos in one reuse scope (one
county's archive: the worst case, every photo compared with every other), each with as many 64-bit index
hashes as `reuse.fingerprint` gives a photo now, and their band rows from `reuse.band_keys`. The sizes count
stored hashes (photos = size / index hashes per photo); the fill grows one database from size to size.
Stored hashes are random: `balanced` (the default) has exactly 32 of the 64 bits set, as every real DCT hash
has (each bit says "above the median coefficient"); `uniform` is any 64-bit pattern. Balanced hashes share
band values more often (a band's value has about 8 bits set), so they are the harder, more honest case.

At each size, `Intake.candidates` (the service's own lookup: each band of each query hash probed within
`--radius` bits, default the service's 0; on PostgreSQL one statement joining the probes to the band index
and measuring each hash found against the query hash that probed it, on SQLite the rows fetched and measured
in Python) is timed for:
- new photos: the real fingerprints of distinct photo-like pictures that match nothing stored — the everyday
  upload, whose cost is the rows that share a band value by chance;
- near: the same with one query hash replaced by a stored hash with a few bits flipped, up to what the
  probe guarantees (3 bits at radius 0, 7 at radius 1), to check each is found.
Half the queries are of each kind, alternating, until `--queries` are done or `--seconds` have passed. The
time is split into the SQL round trip (statement and fetching its rows, from SQLAlchemy's cursor events)
and the rest (building the statement and, on SQLite, rows, distances and sorting in Python). `--sql-filter`
also times an alternative that is NOT the service's code: the probe as four array parameters with every
fetched hash measured against every query hash in SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import event

from bench._util import machine, percentile, table
from services.kit.db import Database
from services.kit.migrations import upgrade
from services.media.photos.service import Intake
from services.media.reuse import (
    BANDS,
    CANDIDATE_MAX_DISTANCE,
    PROBE_RADIUS,
    Fingerprint,
    band_keys,
    fingerprint,
    probe_guarantee,
    probe_keys,
)
from services.media.settings import MediaSettings
from services.media.storage import ObjectStore
from tests.media import images

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
SCOPE = "/37/3702/370282/"  # 即墨区: one county's archive
REGION_PATH = "/37/3702/370282/370282103/370282103201/"
PHOTO_COLUMNS = [
    "id",
    "sha256",
    "mime",
    "width",
    "height",
    "size_bytes",
    "purpose",
    "uploader",
    "uploader_role",
    "region_code",
    "region_path",
    "reuse_scope",
    "has_exif",
    "flags",
    "created_at",
]
HASH_COLUMNS = ["photo_id", "reuse_scope", "band", "value", "full_hash"]
RADIUS = PROBE_RADIUS  # set from --radius


def near_flips() -> tuple[int, ...]:
    """Bits flipped in the "near" queries: from 1 (or 3 at radius 1) up to what the probe guarantees."""
    top = probe_guarantee(RADIUS)
    return tuple(range(max(1, top - 4), top + 1))


WARM_UP = 10


# ---- the archive ---------------------------------------------------------------------------------------


class Archive:
    """The stored photos and hashes, kept here too so queries can be made near stored ones."""

    def __init__(self, per_photo: int, model: str, seed: int = 7) -> None:
        self.per_photo = per_photo
        self.model = model
        self.rng = np.random.default_rng(seed)
        self.ids: list[str] = []
        self.hashes: NDArray[np.int64] = np.empty((0, per_photo), dtype=np.int64)

    @property
    def stored(self) -> int:
        return len(self.ids) * self.per_photo

    def grow(self, photos: int) -> tuple[list[str], NDArray[np.int64]]:
        ids = [f"{self.rng.integers(0, 1 << 62):016x}{len(self.ids) + i:016x}" for i in range(photos)]
        hashes = self._hashes(photos * self.per_photo).reshape(photos, self.per_photo)
        self.ids.extend(ids)
        self.hashes = np.concatenate([self.hashes, hashes])
        return ids, hashes

    def _hashes(self, n: int) -> NDArray[np.int64]:
        if self.model == "uniform":
            info = np.iinfo(np.int64)
            return self.rng.integers(info.min, info.max, size=n, dtype=np.int64, endpoint=True)
        # 32 distinct bit positions of 64 per hash: the 32 smallest of 64 random keys.
        positions = np.argpartition(self.rng.random((n, 64)), 32, axis=1)[:, :32].astype(np.uint64)
        patterns: NDArray[np.uint64] = (np.uint64(1) << positions).sum(axis=1, dtype=np.uint64)
        return patterns.view(np.int64)


def photo_rows(ids: list[str], now: Any) -> Iterator[tuple[Any, ...]]:
    for pid in ids:
        yield (
            pid,
            pid * 2,
            "image/jpeg",
            4000,
            3000,
            3_300_000,
            "after",
            "user:bench",
            "village",
            "370282103201",
            REGION_PATH,
            SCOPE,
            True,
            "[]",
            now,
        )


def hash_rows(ids: list[str], hashes: NDArray[np.int64]) -> Iterator[tuple[Any, ...]]:
    for pid, row in zip(ids, hashes.tolist(), strict=True):
        for full_hash in row:
            for band, value in band_keys(full_hash):
                yield (pid, SCOPE, band, value, full_hash)


async def fill_postgres(dsn: str, archive: Archive, photos: int, chunk: int = 20_000) -> float:
    """Add `photos` photos and their band rows by COPY; seconds taken (ANALYZE included)."""
    start = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        # The rows are consistent by construction; skipping the per-row foreign-key trigger halves the fill.
        await conn.execute("SET session_replication_role = replica")
        now = datetime.now(UTC)
        for offset in range(0, photos, chunk):
            ids, hashes = archive.grow(min(chunk, photos - offset))
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "photos", records=photo_rows(ids, now), columns=PHOTO_COLUMNS
                )
                await conn.copy_records_to_table(
                    "photo_hashes", records=hash_rows(ids, hashes), columns=HASH_COLUMNS
                )
        await conn.execute("ANALYZE photos")
        await conn.execute("ANALYZE photo_hashes")
    finally:
        await conn.close()
    return time.perf_counter() - start


async def postgres_sizes(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM photo_hashes) AS rows,"
            " pg_relation_size('ix_photo_hashes_lookup') AS lookup_index,"
            " pg_total_relation_size('photo_hashes') AS total"
        )
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


def fill_sqlite(path: Path, archive: Archive, photos: int) -> float:
    start = time.perf_counter()
    conn = sqlite3.connect(path)
    try:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        ids, hashes = archive.grow(photos)
        with conn:
            conn.executemany(
                f"INSERT INTO photos ({', '.join(PHOTO_COLUMNS)}) VALUES ({', '.join('?' * len(PHOTO_COLUMNS))})",
                photo_rows(ids, now),
            )
            conn.executemany(
                f"INSERT INTO photo_hashes ({', '.join(HASH_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                hash_rows(ids, hashes),
            )
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return time.perf_counter() - start


# ---- queries -------------------------------------------------------------------------------------------


@dataclass
class Query:
    fp: Fingerprint
    target: str | None = None  # the stored photo a near query must find
    flips: int = 0


def new_photo_fingerprints(count: int) -> list[Fingerprint]:
    """Real fingerprints of `count` distinct photo-like pictures (hashes only; the features are not needed)."""
    out = []
    for i in range(count):
        fp = fingerprint(images.photo_like(640, 480, seed=500_000 + i))
        out.append(Fingerprint(fp.index_hashes, fp.query_hashes, b""))
    return out


def flip(h: int, bits: int, rng: random.Random) -> int:
    u = h & ((1 << 64) - 1)
    for bit in rng.sample(range(64), bits):
        u ^= 1 << bit
    return u - (1 << 64) if u >= 1 << 63 else u


def make_queries(archive: Archive, photos: list[Fingerprint], seed: int) -> list[Query]:
    """Alternating: a new photo's fingerprint, then one with a stored hash (3–7 bits flipped) slipped in."""
    rng = random.Random(seed)
    queries = []
    for i, fp in enumerate(photos):
        if i % 2 == 0:
            queries.append(Query(fp))
            continue
        flips = near_flips()[(i // 2) % len(near_flips())]
        k = rng.randrange(len(archive.ids))
        stored = flip(int(archive.hashes[k, rng.randrange(archive.per_photo)]), flips, rng)
        hashes = list(fp.query_hashes)
        hashes[rng.randrange(len(hashes))] = stored
        queries.append(Query(Fingerprint(fp.index_hashes, tuple(hashes), b""), archive.ids[k], flips))
    return queries


def probe(fp: Fingerprint) -> dict[int, set[int]]:
    wanted: dict[int, set[int]] = {b: set() for b in range(BANDS)}
    for q in fp.query_hashes:
        for band, value in probe_keys(q, RADIUS):
            wanted[band].add(value)
    return wanted


def fetched_rows(archive: Archive, fp: Fingerprint) -> int:
    """Stored hashes the band probe of `fp` fetches (the rows the SQL returns), counted here in numpy."""
    u = archive.hashes.view(np.uint64)
    hit = np.zeros(u.shape, dtype=bool)
    for band, values in probe(fp).items():
        column = (u >> np.uint64(16 * (BANDS - 1 - band))) & np.uint64(0xFFFF)
        hit |= np.isin(column, np.fromiter(values, dtype=np.uint64))
    return int(hit.sum())


@dataclass
class Timing:
    backend: str
    stored: int
    kind: str
    total_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    found: int = 0


def _kinds(backend: str, archive: Archive) -> dict[str, Timing]:
    return {kind: Timing(backend, archive.stored, kind) for kind in ("new photo", "near")}


async def time_lookups(
    url: str, queries: list[Query], archive: Archive, backend: str, seconds: float
) -> list[Timing]:
    """`Intake.candidates` on each query, in one session, until the queries or `seconds` run out."""
    database = Database(url)
    intake = Intake(cast(ObjectStore, object()), MediaSettings(environment="test", reuse_probe_radius=RADIUS))
    sql_ms = 0.0
    started = 0.0

    def before(*_: Any) -> None:
        nonlocal started
        started = time.perf_counter()

    def after(*_: Any) -> None:
        nonlocal sql_ms
        sql_ms += (time.perf_counter() - started) * 1000

    event.listen(database.engine.sync_engine, "before_cursor_execute", before)
    event.listen(database.engine.sync_engine, "after_cursor_execute", after)
    timings = _kinds(backend, archive)
    try:
        async with database.sessionmaker() as session:
            for query in queries[-WARM_UP:]:  # warm the connection, the statement cache and the index pages
                await intake.candidates(session, SCOPE, query.fp)
            deadline = time.perf_counter() + seconds
            for query in queries[:-WARM_UP]:
                t = timings["near" if query.target else "new photo"]
                sql_ms = 0.0
                start = time.perf_counter()
                found = await intake.candidates(session, SCOPE, query.fp)
                t.total_ms.append((time.perf_counter() - start) * 1000)
                t.sql_ms.append(sql_ms)
                t.candidates.append(len(found))
                if query.target:
                    t.found += any(pid == query.target and d <= query.flips for pid, d in found)
                if time.perf_counter() > deadline and query.target:
                    break
            await session.rollback()
    finally:
        await database.dispose()
    new = timings["new photo"]
    sample = [q for q in queries if not q.target][: min(50, len(new.total_ms))]
    new.keys = [sum(len(v) for v in probe(q.fp).values()) for q in sample]
    new.rows = [fetched_rows(archive, q.fp) for q in sample]
    return list(timings.values())


SQL_FILTER = """
SELECT photo_id, min(d) AS distance FROM (
    SELECT h.photo_id,
           (SELECT min(bit_count((h.full_hash # q)::bit(64))) FROM unnest($6::bigint[]) AS q) AS d
    FROM photo_hashes AS h
    WHERE h.reuse_scope = $1
      AND ((h.band = 0 AND h.value = ANY($2)) OR (h.band = 1 AND h.value = ANY($3))
        OR (h.band = 2 AND h.value = ANY($4)) OR (h.band = 3 AND h.value = ANY($5)))
) AS near WHERE d <= $7
GROUP BY photo_id ORDER BY distance, photo_id LIMIT $8
"""


async def time_sql_filter(dsn: str, queries: list[Query], archive: Archive, seconds: float) -> list[Timing]:
    """An alternative, not the service's code: the probe as four arrays of band values, and every fetched
    hash measured against every query hash in SQL (the service joins each to the query that probed it)."""
    conn = await asyncpg.connect(dsn)
    timings = _kinds("PostgreSQL, all-pairs distance in SQL", archive)
    try:
        statement = await conn.prepare(SQL_FILTER)

        async def lookup(fp: Fingerprint) -> list[tuple[str, int]]:
            wanted = probe(fp)
            rows = await statement.fetch(
                SCOPE,
                *(sorted(wanted[b]) for b in range(BANDS)),
                list(fp.query_hashes),
                CANDIDATE_MAX_DISTANCE,
                40,
            )
            return [(r["photo_id"], r["distance"]) for r in rows]

        for query in queries[-WARM_UP:]:
            await lookup(query.fp)
        deadline = time.perf_counter() + seconds
        for query in queries[:-WARM_UP]:
            t = timings["near" if query.target else "new photo"]
            start = time.perf_counter()
            found = await lookup(query.fp)
            t.total_ms.append((time.perf_counter() - start) * 1000)
            t.candidates.append(len(found))
            if query.target:
                t.found += any(pid == query.target and d <= query.flips for pid, d in found)
            if time.perf_counter() > deadline and query.target:
                break
    finally:
        await conn.close()
    return list(timings.values())


# ---- main ----------------------------------------------------------------------------------------------


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(database="postgres", timeout=5, **PG)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="stored hashes")
    parser.add_argument("--queries", type=int, default=200, help="queries per size, half of each kind")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop querying a size after this long")
    parser.add_argument("--hash-model", choices=["balanced", "uniform"], default="balanced")
    parser.add_argument("--radius", type=int, choices=[0, 1], default=PROBE_RADIUS, help="band probe radius")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite at the first size")
    parser.add_argument(
        "--sql-filter",
        action="store_true",
        help="also time an alternative lookup (not the service's): probe keys as arrays, distances in SQL",
    )
    args = parser.parse_args()
    global RADIUS
    RADIUS = args.radius
    started = time.perf_counter()

    photos_fp = new_photo_fingerprints(args.queries + WARM_UP)
    per_photo = max(len(fp.index_hashes) for fp in photos_fp)
    query_hashes = statistics.median(len(fp.query_hashes) for fp in photos_fp)
    print(
        f"fingerprint now: {per_photo} index hashes per photo ({per_photo * BANDS} band rows), "
        f"median {query_hashes:.0f} query hashes; stored hashes {args.hash_model}; load average {_load()}",
        flush=True,
    )
    timings: list[Timing] = []
    fills: list[list[object]] = []

    db_name = f"hz_bench_{os.getpid()}"
    asyncio.run(_admin(f'CREATE DATABASE "{db_name}"'))
    dsn = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{db_name}"
    url = f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{db_name}"
    try:
        upgrade("media", url)
        archive = Archive(per_photo, args.hash_model)
        for size in sorted(args.sizes):
            photos = -(-size // per_photo) - len(archive.ids)
            seconds = asyncio.run(fill_postgres(dsn, archive, photos))
            sizes = asyncio.run(postgres_sizes(dsn))
            fills.append(
                [
                    f"PostgreSQL {archive.stored:,} hashes",
                    f"{len(archive.ids):,}",
                    f"{sizes['rows']:,}",
                    f"{seconds:.1f} s (+{photos:,} photos)",
                    f"{sizes['lookup_index'] / 2**20:.1f} MiB",
                    f"{sizes['total'] / 2**20:.1f} MiB",
                ]
            )
            print(f"  filled {archive.stored:,} hashes in {seconds:.1f} s; timing lookups …", flush=True)
            queries = make_queries(archive, photos_fp, seed=size)
            timings += asyncio.run(time_lookups(url, queries, archive, "PostgreSQL", args.seconds))
            if args.sql_filter:
                timings += asyncio.run(time_sql_filter(dsn, queries, archive, args.seconds))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))

    if not args.no_sqlite:
        size = min(args.sizes)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "media.db"
            sqlite_url = f"sqlite+aiosqlite:///{path}"
            upgrade("media", sqlite_url)
            archive = Archive(per_photo, args.hash_model, seed=11)
            seconds = fill_sqlite(path, archive, -(-size // per_photo))
            conn = sqlite3.connect(path)
            rows = conn.execute("SELECT count(*) FROM photo_hashes").fetchone()[0]
            index_bytes = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'ix_photo_hashes_lookup'"
            ).fetchone()[0]
            conn.close()
            fills.append(
                [
                    f"SQLite {archive.stored:,} hashes",
                    f"{len(archive.ids):,}",
                    f"{rows:,}",
                    f"{seconds:.1f} s",
                    f"{index_bytes / 2**20:.1f} MiB" if index_bytes else "–",
                    f"{path.stat().st_size / 2**20:.1f} MiB (file)",
                ]
            )
            print(
                f"  SQLite: filled {archive.stored:,} hashes in {seconds:.1f} s; timing lookups …", flush=True
            )
            queries = make_queries(archive, photos_fp, seed=size)
            timings += asyncio.run(time_lookups(sqlite_url, queries, archive, "SQLite", args.seconds))

    print(
        f"\n{machine()}; load average now {_load()}; {per_photo} index hashes per photo, median "
        f"{query_hashes:.0f} query hashes; stored hashes {args.hash_model}\n"
    )
    print(
        table(
            [
                "stored",
                "photos",
                "photo_hashes rows",
                "fill (COPY + ANALYZE)",
                "ix_photo_hashes_lookup",
                "table + indexes",
            ],
            fills,
        )
    )
    print()
    rows_out = []
    for t in timings:
        rows_out.append(
            [
                f"{t.backend} {t.stored:,} hashes, {t.kind}",
                len(t.total_ms),
                percentile(t.total_ms, 50),
                percentile(t.total_ms, 95),
                max(t.total_ms),
                statistics.median(t.sql_ms) if t.sql_ms else float("nan"),
                statistics.mean(t.keys) if t.keys else "",
                statistics.mean(t.rows) if t.rows else "",
                statistics.mean(t.candidates),
                f"{t.found}/{len(t.total_ms)}" if t.kind == "near" else "",
            ]
        )
    print(
        table(
            [
                "candidates() latency, ms",
                "queries",
                "p50",
                "p95",
                "max",
                "SQL p50",
                "probe keys",
                "hashes fetched",
                "candidates",
                "near found",
            ],
            rows_out,
        )
    )
    print(
        f"\nprobe radius {RADIUS}. near: one query hash is a stored hash with {near_flips()[0]}–{near_flips()[-1]} "
        f"bits flipped (the probe guarantees ≤ {probe_guarantee(RADIUS)}). probe keys: distinct (band, value) pairs looked up; hashes "
        f"fetched: stored hashes sharing one (counted in numpy, new-photo queries)\ntotal "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
