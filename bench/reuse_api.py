"""Reuse detection through the API: the evaluation set of bench.reuse_set uploaded into one county.

    uv run python -m bench.reuse_api [--set-dir DIR] [--db sqlite|postgres] [--concurrency 2] [--limit N]

Starts the media service for real (uvicorn in a subprocess, tokens checked against a JWKS served here) and
uploads, as one village user of one county, first every distinct picture of the set, then every reused
copy, the way `wx.uploadFile` sends them. Then, from the upload answers and `/v1/photos/{id}/similar`:

- **recall** per kind of reuse and per texture class: a copy is caught when its upload answer flags
  `reused` naming its own original (`named`), and `first` when the first flag names it (the earliest
  photo of that picture: the original, uploaded before its copies);
- the `featureless` pictures and their look-alikes (see bench.reuse_set) are reported apart: the target
  applies to the set without them, and a copy of one naming the other is a false alarm like any other;
- **false alarms**: an original flagged at all (every earlier upload is another picture), or a copy whose
  answer or `/similar` list names a photo of another picture (copies of the same picture are the same
  picture, not false alarms).

Build the set first: `uv run python -m bench.reuse_set`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import reuse_set
from bench._util import cpu_ms, machine, static_json_server
from bench.media_upload import AUDIENCE, PG, VILLAGE, VILLAGE_PATH, start_service
from services.issues.auth.keys import KeyRing
from services.issues.auth.tokens import mint_access_token
from services.kit.identity import ROLE_SCOPES, Role
from services.kit.migrations import upgrade


@dataclass
class Upload:
    picture: reuse_set.Picture
    kind: str  # "original" or a kind of reuse
    path: Path
    photo_id: str = ""
    named: list[str] = field(default_factory=list)  # other photo ids the answer's reused flags name
    first_earliest: bool = False
    error: str = ""


async def _upload_all(url: str, token: str, uploads: list[Upload], concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    queue: asyncio.Queue[Upload] = asyncio.Queue()
    for u in uploads:
        queue.put_nowait(u)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300.0, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                u = queue.get_nowait()
                r = await client.post(
                    "/v1/photos",
                    headers=headers,
                    files={"file": (u.path.name, u.path.read_bytes(), "image/jpeg")},
                    data={"purpose": "after"},
                )
                if r.status_code != 201:
                    u.error = f"{r.status_code} {r.text[:200]}"
                    continue
                body: dict[str, Any] = r.json()
                u.photo_id = body["id"]
                reused = [f["figures"] for f in body["flags"] if f["code"] == "reused"]
                u.named = [f["other_photo_id"] for f in reused if "other_photo_id" in f]
                u.first_earliest = bool(reused) and bool(reused[0].get("earliest"))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _similar(url: str, token: str, photo_ids: list[str], concurrency: int) -> dict[str, list[str]]:
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, list[str]] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in photo_ids:
        queue.put_nowait(p)
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:

        async def worker() -> None:
            while not queue.empty():
                photo_id = queue.get_nowait()
                r = await client.get(f"/v1/photos/{photo_id}/similar", headers=headers)
                r.raise_for_status()
                out[photo_id] = [m["photo_id"] for m in r.json()["items"]]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(**PG, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run(root: Path, db: str, concurrency: int, limit: int | None) -> None:
    pictures = reuse_set.load(root)
    if limit:
        pictures = pictures[:limit]
    originals = [Upload(p, "original", root / "originals" / f"{p.name}.jpg") for p in pictures]
    copies = [
        Upload(p, kind, root / "copies" / f"{p.name}__{kind}.jpg")
        for p in pictures
        for kind in reuse_set.KINDS
    ]
    work = Path(tempfile.mkdtemp(prefix="hz-bench-reuse-api-"))
    db_name = f"hz_bench_reuse_{os.getpid()}"
    if db == "postgres":
        asyncio.run(_pg(f'CREATE DATABASE "{db_name}"'))
        url = f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{db_name}"
    else:
        url = f"sqlite+aiosqlite:///{work / 'media.db'}"
    started = time.perf_counter()
    try:
        upgrade("media", url)
        keyring = KeyRing.from_folder(work / "keys", generate_if_empty=True)
        issuer = {"/.well-known/jwks.json": keyring.jwks(), "/.well-known/revocations.json": {"subjects": []}}
        with static_json_server(issuer) as jwks_base:
            token = mint_access_token(
                keyring,
                issuer=jwks_base,
                audience=AUDIENCE,
                lifetime_seconds=6 * 3600,
                subject="user:900003",
                role="village",
                region=VILLAGE,
                region_path=VILLAGE_PATH,
                scopes=ROLE_SCOPES[Role.village],
            ).access_token
            settings = {
                "environment": "development",
                "data_dir": str(work / "data"),
                "database_url": url,
                "token_issuer": jwks_base,
                "token_audience": AUDIENCE,
                "log_json": "false",
                "log_level": "WARNING",
                "sweep_interval_seconds": "3600",
                "store": "local",
            }
            service = start_service(settings, work / "service.log")
            try:
                cpu0 = cpu_ms(service.pid)
                t0 = time.perf_counter()
                asyncio.run(_upload_all(service.url, token, originals, concurrency))
                asyncio.run(_upload_all(service.url, token, copies, concurrency))
                upload_s = time.perf_counter() - t0
                cpu = cpu_ms(service.pid) - cpu0
                similar = asyncio.run(
                    _similar(service.url, token, [u.photo_id for u in copies if u.photo_id], concurrency)
                )
            finally:
                service.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if db == "postgres":
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    report(originals, copies, similar, upload_s, cpu, db, concurrency)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {machine()}")


def report(
    originals: list[Upload],
    copies: list[Upload],
    similar: dict[str, list[str]],
    upload_s: float,
    cpu: float,
    db: str,
    concurrency: int,
) -> None:
    source_of = {u.photo_id: u.picture.source for u in originals + copies if u.photo_id}
    original_of = {u.picture.name: u.photo_id for u in originals}
    failed = [u for u in originals + copies if u.error]
    n = len(originals) + len(copies)
    print(
        f"Reuse through the API ({db}, {concurrency} clients): {len(originals)} pictures, then "
        f"{len(copies)} reused copies, uploaded into one county by one village user; "
        f"{n} uploads in {upload_s:.0f} s, service CPU {cpu / max(1, n - len(failed)):.0f} ms per upload; "
        f"failed uploads: {len(failed)} {[u.error for u in failed[:3]]}\n"
    )
    kinds = list(reuse_set.KINDS)
    classes = sorted({u.picture.texture for u in originals}, key=lambda c: (c != "photo", c))
    groups: dict[str, list[Upload]] = {c: [u for u in copies if u.picture.texture == c] for c in classes}
    apart = reuse_set.FEATURELESS_CLASSES
    groups["smooth (not photo)"] = [u for u in copies if u.picture.texture not in ("photo", *apart)]
    groups["all but featureless"] = [u for u in copies if u.picture.texture not in apart]
    groups["featureless (apart)"] = [u for u in copies if u.picture.texture in apart]
    groups["all"] = copies

    def named(u: Upload) -> bool:
        return original_of[u.picture.name] in u.named

    def caught(u: Upload) -> bool:
        """Flagged `reused`, naming photos of this picture (its original, earlier copies, or the photograph
        a blurred or fogged picture was derived from)."""
        return any(source_of.get(other) == u.picture.source for other in u.named)

    def earliest_first(u: Upload) -> bool:
        return caught(u) and u.first_earliest and source_of.get(u.named[0]) == u.picture.source

    header = f"{'pictures':24} {'copies':>6} " + " ".join(f"{k[:11]:>11}" for k in kinds) + f" {'all':>7}"
    print(
        "caught: the upload answer flags `reused` naming this picture (in brackets: its first flag names the"
    )
    print("earliest stored photo of the picture, marked `earliest`)")
    print(header)
    print("-" * len(header))
    for name, rows in groups.items():
        if not rows:
            continue
        cells = []
        for k in kinds:
            of_kind = [u for u in rows if u.kind == k]
            hit = sum(caught(u) for u in of_kind) / max(1, len(of_kind))
            first = sum(earliest_first(u) for u in of_kind) / max(1, len(of_kind))
            cells.append(f"{hit:5.1%} {first:4.0%}"[-11:].rjust(11))
        total = sum(caught(u) for u in rows) / len(rows)
        print(f"{name:24} {len(rows):6d} " + " ".join(cells) + f" {total:7.1%}")
    in_similar = sum(original_of[u.picture.name] in similar.get(u.photo_id, []) for u in copies)
    in_answer = sum(named(u) for u in copies)
    print(
        f"\nthe answer (at most {max((len(u.named) for u in copies), default=0)} flags) names the copy's own "
        f"original: {in_answer / max(1, len(copies)):.1%}; /similar of a copy lists its original: "
        f"{in_similar / max(1, len(copies)):.1%}"
    )
    misses: dict[str, list[str]] = defaultdict(list)
    for u in copies:
        if not caught(u):
            misses[u.kind].append(u.picture.name)
    print(f"not caught: {sum(map(len, misses.values()))}: {dict(misses)}\n")
    # A derived picture (the fog over a photograph) may match its photograph: same source, not counted.
    flagged_originals = [
        (u.picture.name, other)
        for u in originals
        for other in u.named
        if source_of.get(other) != u.picture.source
    ]
    wrong: list[tuple[str, str, str]] = []
    for u in copies:
        for other in set(u.named) | set(similar.get(u.photo_id, [])):
            if source_of.get(other) != u.picture.source:
                wrong.append((u.picture.name, u.kind, other))
    pairs = len(originals) * (len(originals) - 1) // 2
    print(
        f"False alarms: {len(flagged_originals)} originals flagged with another picture (each checked "
        f"against every earlier one: {pairs} pairs) {flagged_originals[:5]}; {len(wrong)} copies naming "
        f"another picture's photo {wrong[:5]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set-dir", type=Path, default=None)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pictures of the set")
    args = parser.parse_args()
    run(args.set_dir or reuse_set.default_dir(), args.db, args.concurrency, args.limit)


if __name__ == "__main__":
    main()
