"""Peak memory of the media service while pixel bombs just under the limit arrive at once (issue 7).

Run: `uv run python -m bench.media_bombs [--bombs 8] [--kind png1] [--service-root PATH]`. ~30 s.

It starts the media service for real (uvicorn in a subprocess on a loopback port, SQLite, the local store,
`MALLOC_ARENA_MAX=2` as shipped; tokens verified against a JWKS served here, as `bench.media_upload` does),
warms it with two ordinary photos, resets its resident peak (VmHWM, `/proc/<pid>/clear_refs`), then sends
`--bombs` uploads of one small image of 10000×9900 pixels (99 MP, just under the 100 MP `MAX_PIXELS`) at
once, sampling its resident size every 5 ms. `--kind`: `png1` (a 12 KB 1-bit PNG: the review's case),
`pngL` (8-bit grey), `pngRGB`, `pngRGBA`, `webp` (lossless RGBA).

`--service-root` runs the service from another checkout of the project (e.g. a `git worktree` of an older
commit) with this environment, to measure before and after a change on the same machine; the database is
migrated by that checkout's own migrations.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from bench._util import (
    ServiceProcess,
    free_port,
    machine,
    memory_mb,
    photo_files,
    reset_peak,
    static_json_server,
    table,
    wait_healthy,
)
from services.issues.auth.keys import KeyRing
from services.issues.auth.tokens import mint_access_token
from services.kit.identity import ROLE_SCOPES, Role

ROOT = Path(__file__).resolve().parents[1]
AUDIENCE = "huanzhi"
VILLAGE = "370282103201"
VILLAGE_PATH = "/37/3702/370282/370282103/370282103201/"
SIZE = (10_000, 9_900)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def one_bit_png(width: int, height: int) -> bytes:
    row = b"\0" + bytes((width + 7) // 8)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(row * height, 9))
        + _chunk(b"IEND", b"")
    )


def bomb(kind: str) -> tuple[bytes, str]:
    """(bytes, content type) of a one-colour image of SIZE."""
    if kind == "png1":
        return one_bit_png(*SIZE), "image/png"
    mode = {"pngL": "L", "pngRGB": "RGB", "pngRGBA": "RGBA", "webp": "RGBA"}[kind]
    colour: int | tuple[int, ...] = 90 if mode == "L" else (90, 120, 60, 255)[: len(mode)]
    buf = io.BytesIO()
    if kind == "webp":
        Image.new(mode, SIZE, colour).save(buf, "WEBP", lossless=True)
        return buf.getvalue(), "image/webp"
    Image.new(mode, SIZE, colour).save(buf, "PNG", optimize=False)
    return buf.getvalue(), "image/png"


def start_service(root: Path, values: dict[str, str], log: Path) -> ServiceProcess:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUANZHI_")}
    env.update({f"HUANZHI_MEDIA_{k.upper()}": v for k, v in values.items()})
    env["HUANZHI_MEDIA_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    env["MALLOC_ARENA_MAX"] = "2"  # as services/devserver.py and deploy/Dockerfile run it
    migrate = "from services.kit.migrations import upgrade; import sys; upgrade('media', sys.argv[1])"
    subprocess.run([sys.executable, "-c", migrate, values["database_url"]], cwd=root, env=env, check=True)
    command = [sys.executable, "-m", "uvicorn", "--factory", "services.media.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    service = ServiceProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_healthy(process, service.url, log)
    except (RuntimeError, TimeoutError):
        service.stop()
        raise
    return service


async def send_all(
    url: str, token: str, bodies: list[tuple[bytes, str, str]]
) -> list[tuple[int, float, str]]:
    """Upload every (bytes, content type, file name) at once; (status, seconds, first bytes of the answer)."""
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=600.0, limits=limits) as client:

        async def one(data: bytes, content_type: str, name: str) -> tuple[int, float, str]:
            started = time.perf_counter()
            r = await client.post(
                "/v1/photos",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (name, data, content_type)},
                data={"purpose": "other"},
            )
            return r.status_code, time.perf_counter() - started, r.text[:200]

        return list(await asyncio.gather(*(one(*body) for body in bodies)))


@dataclass
class Burst:
    rss_before: float
    hwm: float
    sampled: float
    answers: list[tuple[int, float, str]]
    wall: float


def burst(service: ServiceProcess, token: str, bodies: list[tuple[bytes, str, str]]) -> Burst:
    before = memory_mb(service.pid)["VmRSS"]
    if not reset_peak(service.pid):
        raise SystemExit(
            "cannot reset the service's VmHWM (/proc/<pid>/clear_refs): run as its owner on Linux"
        )
    sampled = before
    done = threading.Event()

    def sample() -> None:
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, memory_mb(service.pid)["VmRSS"])
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        answers = asyncio.run(send_all(service.url, token, bodies))
    finally:
        done.set()
        sampler.join()
    return Burst(before, memory_mb(service.pid)["VmHWM"], sampled, answers, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bombs", type=int, default=8)
    parser.add_argument("--kind", choices=["png1", "pngL", "pngRGB", "pngRGBA", "webp"], default="png1")
    parser.add_argument("--service-root", type=Path, default=ROOT)
    args = parser.parse_args()
    root = args.service_root.resolve()

    data, content_type = bomb(args.kind)
    warm_files = photo_files([1000, 1001])
    work = Path(tempfile.mkdtemp(prefix="hz-bench-bombs-"))
    try:
        keyring = KeyRing.from_folder(work / "keys", generate_if_empty=True)
        issuer = {"/.well-known/jwks.json": keyring.jwks(), "/.well-known/revocations.json": {"subjects": []}}
        with static_json_server(issuer) as jwks_base:
            token = mint_access_token(
                keyring,
                issuer=jwks_base,
                audience=AUDIENCE,
                lifetime_seconds=3600,
                subject="user:900001",
                role="village",
                region=VILLAGE,
                region_path=VILLAGE_PATH,
                scopes=ROLE_SCOPES[Role.village],
            ).access_token
            values = {
                "environment": "development",
                "data_dir": str(work / "data"),
                "database_url": f"sqlite+aiosqlite:///{work / 'media.db'}",
                "token_issuer": jwks_base,
                "token_audience": AUDIENCE,
                "log_json": "false",
                "log_level": "WARNING",
                "sweep_interval_seconds": "3600",
                "store": "local",
            }
            service = start_service(root, values, work / "service.log")
            try:
                start_rss = memory_mb(service.pid)["VmRSS"]
                warm = [(p.read_bytes(), "image/jpeg", p.name) for p in warm_files]
                for body in warm:
                    status, _, text = asyncio.run(send_all(service.url, token, [body]))[0]
                    if status != 201:
                        raise SystemExit(f"warm-up upload answered {status}: {text}")
                bodies = [(data, content_type, f"bomb-{i}.{args.kind[:4]}") for i in range(args.bombs)]
                result = burst(service, token, bodies)
            finally:
                service.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    statuses = sorted({status for status, _, _ in result.answers})
    seconds = sorted(s for _, s, _ in result.answers)
    print(f"\n{machine()}; service from {root}")
    print(
        f"{args.bombs} × {args.kind} {SIZE[0]}×{SIZE[1]} ({len(data) / 1024:.0f} KB each) at once: "
        f"answers {statuses}, first {seconds[0]:.1f} s, last {seconds[-1]:.1f} s\n"
    )
    print(
        table(
            ["media service memory, MB", "value"],
            [
                ["RSS at start", start_rss],
                ["RSS after 2 warm-up photos (before the burst)", result.rss_before],
                [f"peak with {args.bombs} bombs at once (VmHWM)", result.hwm],
                ["highest RSS sampled every 5 ms", result.sampled],
                ["peak above the warm service", result.hwm - result.rss_before],
            ],
        )
    )
    failed = [text for status, _, text in result.answers if status != 201]
    if failed:
        print(f"\nnot taken in: {len(failed)}, first: {failed[0]}")


if __name__ == "__main__":
    main()
