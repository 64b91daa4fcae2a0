"""Shared bench helpers: process CPU and memory from /proc, loopback servers, test photos, tables.

Nothing here is imported by the services; benches run with `uv run python -m bench.<name>`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tests.media import images

_TICKS = os.sysconf("SC_CLK_TCK")

# ---- one process's CPU and memory, read from /proc ----------------------------------------------------


def cpu_ms(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of process `pid` (all its threads, or only thread `tid`) so far, in ms.

    The kernel counts in clock ticks: 10 ms resolution.
    """
    stat = Path(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) * 1000 / _TICKS


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak resident since start or since `reset_peak`) of `pid` in MB; Threads."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
        elif name == "Threads":
            out[name] = int(value)
    return out


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+, `echo 5 > clear_refs`); False where that is refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ---- loopback servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def static_json_server(routes: dict[str, Any]) -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 answering GET `path` with `routes[path]` as JSON; yields its base URL."""
    bodies = {path: json.dumps(body).encode() for path, body in routes.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path.split("?", 1)[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_MOTO = """
import sys, time
from tests.media.s3_server import start_s3_server
server = start_s3_server()
print(server.port, flush=True)
sys.stdin.read()  # runs until the bench closes our stdin (or is killed)
server.stop()
"""


@dataclass
class Moto:
    """moto's S3 server in its own process, so its CPU time can be read apart from the bench's."""

    process: subprocess.Popen[str]
    port: int

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_moto(root: Path) -> Moto:
    process = subprocess.Popen(
        [sys.executable, "-c", _MOTO],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        raise RuntimeError(f"moto did not start (said {line!r})")
    return Moto(process, int(line))


# ---- test photos ---------------------------------------------------------------------------------------


class PhotoMaker:
    """Distinct 12-megapixel photo-like JPEGs, fast enough to make a hundred per run.

    `images.photo_like` at full size costs ~3.5 s; its scene is smooth (gradients and blurred fields), so
    it is drawn at 1000×750 and enlarged, then per-pixel grain (luma noise, as a phone sensor gives) is
    added from one shared noise field at a per-photo offset. Each seed gives a different scene, so the
    perceptual hashes differ and content addressing never shortcuts.
    """

    SCENE = (1000, 750)
    SIZE = (4000, 3000)

    def __init__(self, grain: float = 6.0, quality: int = 90) -> None:
        self.quality = quality
        rng = np.random.default_rng(20261123)
        w, h = self.SIZE
        self._noise = np.round(rng.standard_normal((h + 64, w + 64, 1), dtype=np.float32) * grain).astype(
            np.int16
        )

    def jpeg(self, seed: int) -> bytes:
        scene = images.photo_like(*self.SCENE, seed=seed).resize(self.SIZE, Image.Resampling.BICUBIC)
        w, h = self.SIZE
        dy, dx = divmod(seed * 37 % 4096, 64)
        pixels = np.asarray(scene, dtype=np.int16) + self._noise[dy : dy + h, dx : dx + w]
        photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
        # Half the photos are portrait shots stored sideways (EXIF orientation 6), as phones do.
        exif = images.exif_block(
            orientation=6 if seed % 2 else 1,
            taken_at=datetime.now(UTC).replace(microsecond=0),
            gps=(36.39 + seed * 1e-5, 120.45),
            make="HUAWEI",
            model="ALN-AL00",
        )
        return images.encode(photo, "JPEG", quality=self.quality, exif=exif)


_maker: PhotoMaker | None = None


def _make_one(args: tuple[float, int, int, Path]) -> Path:
    global _maker  # one noise field per worker process
    grain, quality, seed, path = args
    if _maker is None:
        _maker = PhotoMaker(grain, quality)
    if not path.exists():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(_maker.jpeg(seed))
        tmp.replace(path)
    return path


def photo_files(seeds: Sequence[int], *, grain: float = 6.0, quality: int = 90) -> list[Path]:
    """JPEG files of `PhotoMaker` photos for `seeds`, made in parallel and cached in the temp folder."""
    cache = Path(tempfile.gettempdir()) / "huanzhi-bench-photos"
    cache.mkdir(exist_ok=True)
    jobs = [(grain, quality, seed, cache / f"g{grain:g}-q{quality}-{seed}.jpg") for seed in seeds]
    missing = [job for job in jobs if not job[3].exists()]
    if missing:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(_make_one, missing, chunksize=4))
    return [job[3] for job in jobs]


# ---- figures and tables --------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table with the columns padded (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def machine() -> str:
    """One line naming the machine the figures were measured on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def elapsed(start: float) -> float:
    return time.perf_counter() - start


def wait_healthy(
    process: subprocess.Popen[bytes], url: str, log: Path, *, seconds: float = 60, path: str = "/healthz"
) -> None:
    """Poll `url + path` until it answers 200; raise with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited:\n{log.read_text()[-3000:]}")
            try:
                if client.get(url + path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the service did not answer {path} in {seconds:.0f} s")
            time.sleep(0.1)


@dataclass
class ServiceProcess:
    """A service started by a benchmark as its own uvicorn process; `log` holds its output."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
