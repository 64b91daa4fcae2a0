"""Upload cost through the media service, against the floor measured in the same run.

Run: `uv run python -m bench.media_upload [--uploads 40] [--concurrency 4] [--burst 32] [--stores local,s3]
[--db sqlite|postgres]`. About a minute with the defaults (the first run also makes 114 test photos in
~45 s, cached in the temp folder afterwards). The service runs as the launcher and the image ship it, with
`MALLOC_ARENA_MAX=2`; `--arena-max ""` measures it on glibc's default arenas.

For each store (the local folder, and S3 through moto's server in its own process) it starts the media
service for real — uvicorn in a subprocess on a loopback port, tokens verified against a JWKS served by a
tiny HTTP server here — and uploads distinct 12-megapixel JPEGs (4000×3000, photo-like with sensor grain,
q90, ~3.3 MB, half of them stored sideways with EXIF orientation 6) as `wx.uploadFile` would send them.

- **floor**: what any upload must cost, measured in this process on the same bytes: a raw PUT to the same
  store (the `minio` client with the service's settings, or writing and fsyncing a file) plus decoding the
  image at reduced scale (`Image.draft` to 1600×1200, the 1/2 DCT scale the display copy needs).
- **service**: CPU time of the uvicorn process (utime + stime from /proc/<pid>/stat) per upload,
  sequentially and with `--concurrency` clients, and the wall-clock throughput; the share of the event-loop
  thread (HTTP, multipart parsing, auth, SQLAlchemy, JSON; the rest is worker threads: image work, store
  client, SQLite) from /proc/<pid>/task/<pid>/stat; moto's CPU (its own process) apart. The ratio is
  service CPU / floor CPU (aim: ≤ 2×).
- **memory**: the service's resident memory at start, after warm-up, and its peak (VmHWM, reset just
  before through /proc/<pid>/clear_refs) while `--burst` uploads arrive at once (aim: ≤ 300 MB), with the
  highest thread count seen.
- **image work**: `pipeline.process` (hash, inspect and variants in one decode, fingerprint) timed in this
  process on a few of the same files, to show how much of the service's CPU is image work.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import urllib3
from minio import Minio
from PIL import Image

from bench._util import (
    Moto,
    ServiceProcess,
    cpu_ms,
    free_port,
    machine,
    memory_mb,
    photo_files,
    reset_peak,
    start_moto,
    static_json_server,
    table,
    wait_healthy,
)
from services.issues.auth.keys import KeyRing
from services.issues.auth.tokens import mint_access_token
from services.kit.identity import ROLE_SCOPES, Role
from services.kit.migrations import upgrade
from services.media.imaging import images as imaging
from services.media.imaging.pipeline import process, sha256_of
from services.media.reuse import fingerprint
from tests.media.s3_server import ACCESS_KEY, REGION, SECRET_KEY

ROOT = Path(__file__).resolve().parents[1]
AUDIENCE = "huanzhi"
VILLAGE = "370282103201"
VILLAGE_PATH = "/37/3702/370282/370282103/370282103201/"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@dataclass
class Phase:
    """Uploads of one phase: wall time, service and moto CPU deltas, answers."""

    uploads: int
    wall_s: float
    service_cpu_ms: float
    loop_cpu_ms: float
    moto_cpu_ms: float
    failures: list[str] = field(default_factory=list)
    reused_flags: int = 0

    @property
    def cpu_per_upload(self) -> float:
        return self.service_cpu_ms / self.uploads

    @property
    def loop_per_upload(self) -> float:
        return self.loop_cpu_ms / self.uploads

    @property
    def moto_per_upload(self) -> float:
        return self.moto_cpu_ms / self.uploads

    @property
    def per_second(self) -> float:
        return self.uploads / self.wall_s


@dataclass
class Floor:
    put_ms: float
    decode_ms: float
    moto_ms: float

    @property
    def total_ms(self) -> float:
        return self.put_ms + self.decode_ms


@dataclass
class StoreResult:
    store: str
    floor: Floor
    sequential: Phase
    concurrent: Phase
    burst: Phase
    rss_start_mb: float
    rss_warm_mb: float
    rss_before_burst_mb: float
    hwm_before_burst_mb: float
    burst_peak_mb: float
    burst_peak_sampled_mb: float
    burst_threads: int
    peak_was_reset: bool


# ---- the service under test ----------------------------------------------------------------------------


ARENA_MAX = "2"  # as services/devserver.py and deploy/Dockerfile run the service; set from --arena-max


def start_service(env_values: dict[str, str], log: Path) -> ServiceProcess:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUANZHI_")}
    env.update({f"HUANZHI_MEDIA_{k.upper()}": v for k, v in env_values.items()})
    env.pop("MALLOC_ARENA_MAX", None)
    if ARENA_MAX:
        env["MALLOC_ARENA_MAX"] = ARENA_MAX
    env["HUANZHI_MEDIA_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "services.media.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = ServiceProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_healthy(process, service.url, log)
    except (RuntimeError, TimeoutError):
        service.stop()
        raise
    return service


# ---- uploads -------------------------------------------------------------------------------------------


async def upload_all(
    url: str, token: str, files: list[Path], concurrency: int
) -> tuple[float, list[str], int]:
    """Upload `files` with `concurrency` clients at once; (wall seconds, failures, `reused` flags seen)."""
    bodies = [path.read_bytes() for path in files]  # read before the clock starts
    failures: list[str] = []
    reused = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300.0, limits=limits) as client:

        async def worker() -> None:
            nonlocal reused
            while not queue.empty():
                body = queue.get_nowait()
                r = await client.post(
                    "/v1/photos",
                    headers={"Authorization": f"Bearer {token}"},
                    files={"file": ("IMG_20261123_101500.jpg", body, "image/jpeg")},
                    data={"purpose": "after", "latitude": "36.3901", "longitude": "120.4502"},
                )
                if r.status_code != 201:
                    failures.append(f"{r.status_code} {r.text[:300]}")
                else:
                    reused += sum(1 for f in r.json()["flags"] if f["code"] == "reused")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, failures, reused


def run_phase(
    service: ServiceProcess, moto: Moto | None, token: str, files: list[Path], concurrency: int
) -> Phase:
    cpu0, loop0 = cpu_ms(service.pid), cpu_ms(service.pid, service.pid)
    moto0 = cpu_ms(moto.pid) if moto else 0.0
    wall, failures, reused = asyncio.run(upload_all(service.url, token, files, concurrency))
    return Phase(
        uploads=len(files),
        wall_s=wall,
        service_cpu_ms=cpu_ms(service.pid) - cpu0,
        loop_cpu_ms=cpu_ms(service.pid, service.pid) - loop0,
        moto_cpu_ms=(cpu_ms(moto.pid) - moto0) if moto else 0.0,
        failures=failures,
        reused_flags=reused,
    )


def run_burst(
    service: ServiceProcess, moto: Moto | None, token: str, files: list[Path]
) -> tuple[Phase, float, float, int, bool]:
    """All of `files` at once: the phase, VmHWM after, highest RSS and thread count sampled every 5 ms, and
    whether VmHWM could be reset first."""
    was_reset = reset_peak(service.pid)
    sampled = 0.0
    threads = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal sampled, threads
        while not done.is_set():
            now = memory_mb(service.pid)
            sampled = max(sampled, now["VmRSS"])
            threads = max(threads, int(now["Threads"]))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        phase = run_phase(service, moto, token, files, concurrency=len(files))
    finally:
        done.set()
        sampler.join()
    return phase, memory_mb(service.pid)["VmHWM"], sampled, threads, was_reset


# ---- the floor -----------------------------------------------------------------------------------------


def decode_reduced(data: bytes) -> None:
    """Decode at the smallest DCT scale still covering the 1600 px display copy, as the service must.

    The draft box keeps the aspect ratio (1600×1200 for 4000×3000, giving the 1/2 scale): a square
    (1600, 1600) box would ask for 1600 rows too, which only the full size has.
    """
    with Image.open(io.BytesIO(data)) as img:
        w, h = img.size
        scale = 1600 / max(w, h)
        img.draft("RGB", (round(w * scale), round(h * scale)))
        img.load()


def measure_floor(store: str, files: list[Path], target: Any, moto: Moto | None) -> Floor:
    """Per-image CPU of this process for a raw PUT of each file (plus reading it) and a reduced decode."""
    # Warm the client's connection and the decoder's code paths first.
    warm = files[0].read_bytes()
    _put(store, target, "bench-floor/warm", warm)
    decode_reduced(warm)
    moto0 = cpu_ms(moto.pid) if moto else 0.0
    put_cpu = 0.0
    for i, path in enumerate(files):
        start = time.process_time()
        _put(store, target, f"bench-floor/{i}", path.read_bytes())
        put_cpu += time.process_time() - start
    moto_cpu = (cpu_ms(moto.pid) - moto0) if moto else 0.0
    decode_cpu = 0.0
    for path in files:
        data = path.read_bytes()
        start = time.process_time()
        decode_reduced(data)
        decode_cpu += time.process_time() - start
    n = len(files)
    return Floor(put_cpu * 1000 / n, decode_cpu * 1000 / n, moto_cpu / n)


def _put(store: str, target: Any, key: str, data: bytes) -> None:
    if store == "s3":
        client, bucket = target
        client.put_object(bucket, key, io.BytesIO(data), len(data), content_type="image/jpeg")
        return
    root: Path = target
    final = root / key
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root / ".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, final)


def image_work_ms(files: list[Path]) -> dict[str, float]:
    """Median thread CPU (ms) on `files` of `pipeline.process` (the service's image work) and its parts."""
    limit = 100_000_000
    parts: dict[str, Callable[[Path], object]] = {
        "pipeline.process": lambda p: process(p, max_pixels=limit),
        "  sha256": sha256_of,
        "  inspect_and_make_variants": lambda p: imaging.inspect_and_make_variants(p, max_pixels=limit),
        "  fingerprint": lambda p: fingerprint(
            imaging.inspect_and_make_variants(p, max_pixels=limit)[1].upright
        ),
    }
    out: dict[str, float] = {}
    for name, work in parts.items():
        work(files[0])  # warm up
        cpus = []
        for path in files:
            start = time.thread_time()
            work(path)
            cpus.append((time.thread_time() - start) * 1000)
        out[name] = statistics.median(cpus)
    # The fingerprint was timed with the decode it needs first; take that out.
    out["  fingerprint"] -= out["  inspect_and_make_variants"]
    return out


# ---- one store -----------------------------------------------------------------------------------------


def run_store(
    store: str,
    work: Path,
    jwks_base: str,
    token: str,
    moto: Moto | None,
    db: str,
    batches: dict[str, list[Path]],
    concurrency: int,
) -> StoreResult:
    data_dir = work / store
    data_dir.mkdir()
    db_name = f"hz_bench_up_{os.getpid()}_{store}"
    if db == "postgres":
        asyncio.run(_pg(f'CREATE DATABASE "{db_name}"'))
        url = f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{db_name}"
    else:
        url = f"sqlite+aiosqlite:///{data_dir / 'media.db'}"
    try:
        upgrade("media", url)
        settings = {
            "environment": "development",
            "data_dir": str(data_dir),
            "database_url": url,
            "token_issuer": jwks_base,
            "token_audience": AUDIENCE,
            "log_json": "false",
            "log_level": "WARNING",
            "sweep_interval_seconds": "3600",
            "store": store,
        }
        bucket = f"bench-{os.getpid()}"
        if store == "s3":
            assert moto is not None
            settings.update(
                s3_endpoint=moto.endpoint,
                s3_access_key=ACCESS_KEY,
                s3_secret_key=SECRET_KEY,
                s3_bucket=bucket,
                s3_region=REGION,
            )
        service = start_service(settings, work / f"{store}-service.log")
        try:
            rss_start = memory_mb(service.pid)["VmRSS"]
            if store == "s3":
                assert moto is not None
                http = urllib3.PoolManager(maxsize=32)
                target: Any = (
                    Minio(
                        moto.endpoint,
                        access_key=ACCESS_KEY,
                        secret_key=SECRET_KEY,
                        secure=False,
                        region=REGION,
                        http_client=http,
                    ),
                    bucket,
                )
            else:
                target = data_dir / "objects"
            warm = run_phase(service, moto, token, batches["warm"], concurrency=1)
            _check(store, "warm-up", warm, service)
            rss_warm = memory_mb(service.pid)["VmRSS"]
            floor = measure_floor(store, batches["sequential"], target, moto)
            sequential = run_phase(service, moto, token, batches["sequential"], concurrency=1)
            _check(store, "sequential", sequential, service)
            concurrent = run_phase(service, moto, token, batches["concurrent"], concurrency=concurrency)
            _check(store, "concurrent", concurrent, service)
            before = memory_mb(service.pid)
            burst, hwm, sampled, threads, was_reset = run_burst(service, moto, token, batches["burst"])
            _check(store, "burst", burst, service)
        finally:
            service.stop()
    finally:
        if db == "postgres":
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    return StoreResult(
        store=store,
        floor=floor,
        sequential=sequential,
        concurrent=concurrent,
        burst=burst,
        rss_start_mb=rss_start,
        rss_warm_mb=rss_warm,
        rss_before_burst_mb=before["VmRSS"],
        hwm_before_burst_mb=before["VmHWM"],
        burst_peak_mb=hwm,
        burst_peak_sampled_mb=sampled,
        burst_threads=threads,
        peak_was_reset=was_reset,
    )


def _check(store: str, name: str, phase: Phase, service: ServiceProcess) -> None:
    if phase.failures:
        print(f"  {store} {name}: {len(phase.failures)} of {phase.uploads} uploads failed, first: ")
        print(f"    {phase.failures[0]}")
        print(f"    service log tail:\n{service.log.read_text()[-1500:]}")


async def _pg(statement: str) -> None:
    conn = await asyncpg.connect(database="postgres", timeout=5, **PG)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# ---- report --------------------------------------------------------------------------------------------


def report(
    results: list[StoreResult], photo_mb: float, work: dict[str, float], args: argparse.Namespace
) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{machine()}; load average {load}; database {args.db}; MALLOC_ARENA_MAX={ARENA_MAX or 'default'}; {photo_mb:.2f} MB mean JPEG (4000×3000 q90)\n"
    )
    rows: list[list[object]] = []
    for r in results:
        rows.append(
            [f"{r.store}: floor (raw PUT + draft decode)", r.floor.total_ms, "", "", r.floor.moto_ms, ""]
        )
        rows.append([f"{r.store}:   of which PUT", r.floor.put_ms, "", "", "", ""])
        rows.append([f"{r.store}:   of which decode at 1/2", r.floor.decode_ms, "", "", "", ""])
        for name, phase in (
            ("service, sequential", r.sequential),
            (f"service, {args.concurrency} at once", r.concurrent),
            (f"service, {args.burst} at once", r.burst),
        ):
            rows.append(
                [
                    f"{r.store}: {name}",
                    phase.cpu_per_upload,
                    f"{phase.cpu_per_upload / r.floor.total_ms:.1f}×",
                    phase.loop_per_upload,
                    phase.moto_per_upload if r.store == "s3" else "",
                    phase.per_second,
                ]
            )
    print(
        table(
            ["per 12 MP upload", "CPU ms", "÷ floor", "event-loop thread", "moto CPU ms", "uploads/s"],
            rows,
        )
    )
    print()
    mem_rows = [
        [
            r.store,
            r.rss_start_mb,
            r.rss_warm_mb,
            r.hwm_before_burst_mb,
            r.rss_before_burst_mb,
            r.burst_peak_mb if r.peak_was_reset else float("nan"),
            r.burst_peak_sampled_mb,
            r.burst_threads,
        ]
        for r in results
    ]
    print(
        table(
            [
                "service memory, MB",
                "RSS at start",
                "after warm-up",
                f"peak before burst (incl. {args.concurrency} at once)",
                "RSS before burst",
                f"peak with {args.burst} at once (VmHWM)",
                "highest RSS sampled",
                "threads",
            ],
            mem_rows,
        )
    )
    print()
    print(table(["image work in this process (median of 8)", "CPU ms"], list(work.items())))
    failed = sum(len(p.failures) for r in results for p in (r.sequential, r.concurrent, r.burst))
    reused = sum(p.reused_flags for r in results for p in (r.sequential, r.concurrent, r.burst))
    print(f"\nfailed uploads: {failed}; `reused` flags raised among distinct photos: {reused}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=40, help="uploads per phase (sequential, concurrent)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--burst", type=int, default=32, help="uploads at once for the memory peak")
    parser.add_argument("--stores", default="local,s3")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--arena-max", default="2", help='MALLOC_ARENA_MAX for the service ("": glibc default)'
    )
    parser.add_argument("--grain", type=float, default=6.0, help="sensor noise in levels (6: ~3.3 MB)")
    args = parser.parse_args()
    global ARENA_MAX
    ARENA_MAX = args.arena_max
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]

    n, warm_n = args.uploads, 2
    seeds = list(range(1000, 1000 + warm_n + 2 * n + args.burst))
    started = time.perf_counter()
    files = photo_files(seeds, grain=args.grain)
    photo_mb = statistics.mean(p.stat().st_size for p in files) / 1e6
    print(
        f"{len(files)} distinct photos ready in {time.perf_counter() - started:.0f} s, {photo_mb:.2f} MB mean"
    )
    batches = {
        "warm": files[:warm_n],
        "sequential": files[warm_n : warm_n + n],
        "concurrent": files[warm_n + n : warm_n + 2 * n],
        "burst": files[warm_n + 2 * n :],
    }
    image_work = image_work_ms(batches["sequential"][:8])

    work = Path(tempfile.mkdtemp(prefix="hz-bench-upload-"))
    moto = start_moto(ROOT) if "s3" in stores else None
    try:
        keyring = KeyRing.from_folder(work / "keys", generate_if_empty=True)
        issuer = {"/.well-known/jwks.json": keyring.jwks(), "/.well-known/revocations.json": {"subjects": []}}
        with static_json_server(issuer) as jwks_base:
            token = mint_access_token(
                keyring,
                issuer=jwks_base,
                audience=AUDIENCE,
                lifetime_seconds=3600,
                subject="user:900002",
                role="village",
                region=VILLAGE,
                region_path=VILLAGE_PATH,
                scopes=ROLE_SCOPES[Role.village],
            ).access_token
            results = []
            for store in stores:
                print(f"measuring the {store} store …", flush=True)
                results.append(
                    run_store(store, work, jwks_base, token, moto, args.db, batches, args.concurrency)
                )
    finally:
        if moto:
            moto.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(results, photo_mb, image_work, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
