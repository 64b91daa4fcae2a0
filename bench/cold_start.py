"""Cold start: from spawning a service's process to its first 200 on /healthz, three rounds per service.

    uv run python -m bench.cold_start [--rounds 3] [--python PATH]

`--python` runs the services with another interpreter: a production environment made with
`UV_PROJECT_ENVIRONMENT=<folder> uv sync --frozen --no-dev` has none of the test tools (httpx imports `rich`
for its command line when it is installed: ~0.1–0.2 s of every start here), so it measures what a deployed
service does.

Each service runs as `python -m uvicorn --factory services.<name>.app:create_app` (as the launcher starts
it) on a fresh data folder with the embedded defaults (SQLite, local store); /healthz needs no database,
so this is the time to import, build the app and open the lifespan. The first round of issues also
generates its signing key, as a first start does. Also prints the CPU time the process had used when it first
answered (user + system, from /proc: the start's own work, which a loaded machine does not inflate the way it
does the wall clock) and what importing each app module costs alone (`python -X importtime` in a fresh
interpreter, self-reported).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SERVICES = ("issues", "scoring", "media")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def one_start(service: str, data_dir: Path, python: str) -> tuple[float, float]:
    port = free_port()
    env = {
        **os.environ,
        f"HUANZHI_{service.upper()}_DATA_DIR": str(data_dir),
        "HUANZHI_ISSUES_SEED_DEMO": "false",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            python,
            "-m",
            "uvicorn",
            "--factory",
            f"services.{service}.app:create_app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(timeout=1.0) as client:
            while time.perf_counter() - started < 60:
                try:
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        return time.perf_counter() - started, cpu_seconds(process.pid)
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
        raise RuntimeError(f"{service} did not answer /healthz within 60 s")
    finally:
        process.terminate()
        process.wait(timeout=10)


def import_seconds(service: str, python: str) -> float:
    done = subprocess.run(
        [python, "-X", "importtime", "-c", f"import services.{service}.app"],
        capture_output=True,
        text=True,
        check=True,
    )
    last = [line for line in done.stderr.splitlines() if line.startswith("import time:")][-1]
    return int(last.split("|")[1]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="the interpreter the services run with")
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'service':8} {'wall, rounds (s)':28} {'median':>7} {'CPU median':>11} {'import':>7}")
    for service in SERVICES:
        with tempfile.TemporaryDirectory() as folder:
            rounds = [one_start(service, Path(folder), args.python) for _ in range(args.rounds)]
        walls, cpus = [r[0] for r in rounds], [r[1] for r in rounds]
        print(
            f"{service:8} {' '.join(f'{r:.2f}' for r in walls):28} {statistics.median(walls):7.2f} "
            f"{statistics.median(cpus):11.2f} {import_seconds(service, args.python):7.2f}"
        )


if __name__ == "__main__":
    main()
