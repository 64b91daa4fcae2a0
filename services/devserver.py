"""Start the whole system on one machine: three processes on 127.0.0.1, migrations applied, demo data on
first start; on the embedded defaults SQLite files and a local object folder under one data folder.
Ctrl-C (or SIGTERM) stops all three.

    python -m services.devserver [--data-dir .data] [--port-base 8001] [--host 127.0.0.1]

Configuration: every HUANZHI_* variable of the environment reaches the services, and so do the variables
of `<data-dir>/.env` (KEY=VALUE lines; the environment wins over the file). The launcher decides only the
stack's own wiring, whatever is given: each service's DATA_DIR (the data folder) and TOKEN_ISSUER (the
issues service's URL), HUANZHI_ISSUES_MEDIA_URL and HUANZHI_MEDIA_PUBLIC_BASE_URL (the media service's
URL). HUANZHI_ISSUES_SEED_DEMO defaults to true. So `HUANZHI_ISSUES_DATABASE_URL=postgresql+asyncpg://…`
runs the issues service on PostgreSQL (migrated before it starts), `HUANZHI_MEDIA_STORE=s3` on MinIO.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from dotenv import dotenv_values
from pydantic import TypeAdapter

from services.kit.migrations import upgrade

SERVICES = ("issues", "scoring", "media")
ENV_FILE = ".env"


@dataclass(frozen=True)
class Stack:
    urls: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    data_dir: Path


def env_file(data_dir: Path) -> Path:
    """The launcher's configuration file: `.env` in the data folder."""
    return data_dir / ENV_FILE


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a `.env` file (KEY=VALUE, `#` comments, quotes, `${VAR}`); none if it is missing."""
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def launcher_wiring(data_dir: Path, ports: Mapping[str, int], host: str = "127.0.0.1") -> dict[str, str]:
    """The variables the launcher decides, whatever the environment says: where each service is."""
    issuer, media = f"http://{host}:{ports['issues']}", f"http://{host}:{ports['media']}"
    wiring = {}
    for service in SERVICES:
        prefix = f"HUANZHI_{service.upper()}_"
        wiring[prefix + "DATA_DIR"] = str(data_dir.resolve())
        # The issuer's URL: the `iss` of its tokens, where the others fetch its keys and scoring calls it.
        wiring[prefix + "TOKEN_ISSUER"] = issuer
    wiring["HUANZHI_ISSUES_MEDIA_URL"] = media
    wiring["HUANZHI_SCORING_MEDIA_URL"] = media  # scorecard photos are checked and pinned there
    # Signed links of the local object store point at the media service where it really listens.
    wiring["HUANZHI_MEDIA_PUBLIC_BASE_URL"] = media
    return wiring


def stack_environment(
    data_dir: Path, ports: Mapping[str, int], host: str = "127.0.0.1", extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The three services' environment: `<data_dir>/.env` under this process's environment (which wins),
    then the launcher's wiring over both, then `extra` (tests) over everything."""
    env = read_env_file(env_file(data_dir))
    env.update(os.environ)
    env.setdefault("HUANZHI_ISSUES_SEED_DEMO", "true")
    # glibc keeps a malloc arena per thread; image work in worker threads then holds on to freed memory.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.update(launcher_wiring(data_dir, ports, host))
    env.update(extra or {})
    return env


def migrate_all(env: Mapping[str, str]) -> None:
    """Apply each service's migrations to the database its settings name."""
    from services.issues.settings import IssuesSettings
    from services.media.settings import MediaSettings
    from services.scoring.settings import ScoringSettings

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        for name, settings in (
            ("issues", IssuesSettings()),
            ("scoring", ScoringSettings()),
            ("media", MediaSettings()),
        ):
            upgrade(name, settings.resolved_database_url)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_stack(
    data_dir: Path,
    ports: Mapping[str, int],
    *,
    host: str = "127.0.0.1",
    extra_env: Mapping[str, str] | None = None,
    quiet: bool = False,
    ready_timeout: float = 60.0,
) -> Stack:
    """Migrate, start the three services as processes, and wait until each answers /readyz."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = stack_environment(data_dir, ports, host, extra_env)
    migrate_all(env)
    urls = {s: f"http://{host}:{ports[s]}" for s in SERVICES}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stack = Stack(urls, processes, data_dir)
    try:
        for service in SERVICES:  # filled in place: an interrupt while spawning still stops what started
            processes[service] = spawn_service(service, host, ports[service], env, quiet=quiet)
        wait_ready(stack, ready_timeout)
    except BaseException:
        stop_stack(stack)
        raise
    return stack


# No `server: uvicorn` in answers; headers up to 64 KiB reach the app, which answers what is too large
# with a problem (431) instead of the server's plain-text 400.
UVICORN_HARDENING = ("--no-server-header", "--h11-max-incomplete-event-size", str(64 * 1024 + 8192))


def spawn_service(
    service: str, host: str, port: int, env: Mapping[str, str], *, quiet: bool = False
) -> subprocess.Popen[bytes]:
    """One service as a uvicorn process with the stack's environment."""
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            f"services.{service}.app:create_app",
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *UVICORN_HARDENING,
        ],
        env=dict(env),
        stdout=output,
        stderr=output,
    )


def wait_ready(stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(stack.urls)
    with httpx.Client(timeout=2.0) as client:
        while pending:
            for service, url in list(pending.items()):
                if stack.processes[service].poll() is not None:
                    raise RuntimeError(f"{service} exited with {stack.processes[service].returncode}")
                try:
                    if client.get(url + "/readyz").status_code == 200:
                        del pending[service]
                except httpx.TransportError:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(pending)}")
            if pending:
                time.sleep(0.1)


def stop_stack(stack: Stack) -> None:
    for process in stack.processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in stack.processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def seed_scoring_demo(stack: Stack) -> str:
    """The scoring demo (services/scoring/demo.py), made through the running services' APIs once all three
    answer: it needs the issues service's demo tree. A line to print."""
    from services.scoring.demo import DemoOutcome, DemoSeedingFailed, seed_demo_scoring
    from services.scoring.periods import SHANGHAI

    async def run() -> DemoOutcome:
        async with (
            httpx.AsyncClient(base_url=stack.urls["issues"], timeout=30) as issues,
            httpx.AsyncClient(base_url=stack.urls["scoring"], timeout=60) as scoring,
        ):
            return await seed_demo_scoring(issues, scoring, today=datetime.now(SHANGHAI).date())

    try:
        outcome = asyncio.run(run())
    except (DemoSeedingFailed, httpx.HTTPError) as exc:
        return f"note: the scoring demo was not seeded ({exc})"
    if outcome.skipped:
        return "Scoring demo: already published"
    return (
        f"Scoring demo: {', '.join(outcome.periods)} published ({outcome.rounds} rounds, "
        f"{outcome.scorecards} scorecards); see /v1/rankings, /v1/lists, /v1/escalations, /v1/bulletins"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    from services.issues.demo import DEMO_PASSWORD, DEMO_USERS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--port-base", type=int, default=8001, help="issues on it, scoring +1, media +2")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    ports = {s: args.port_base + i for i, s in enumerate(SERVICES)}
    given = read_env_file(env_file(args.data_dir)) | dict(os.environ)
    for name, value in launcher_wiring(args.data_dir, ports, args.host).items():
        if name in given and given[name] != value:
            print(f"note: the launcher sets {name}={value} (not {given[name]})", file=sys.stderr)
    seeded = TypeAdapter(bool).validate_python(
        stack_environment(args.data_dir, ports, args.host)["HUANZHI_ISSUES_SEED_DEMO"]
    )
    # Ctrl-C, and a supervisor's SIGTERM, stop all three, even when started where SIGINT was ignored
    # (a background job of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    stack = start_stack(args.data_dir, ports, host=args.host)  # stops what it started if interrupted
    try:
        if seeded:
            print(seed_scoring_demo(stack), flush=True)
        print(f"\nHuanzhi is up in {time.monotonic() - started:.1f} s (data in {args.data_dir.resolve()}):")
        for service, url in stack.urls.items():
            print(f"  {service:<8} {url}   docs {url}/docs")
        if seeded:
            print(f"\nDemo users (password {DEMO_PASSWORD}):")
            for username, display_name, role, region in DEMO_USERS:
                print(f"  {username:<10} {role:<10} {region:<18} {display_name}")
            print(
                f"\nTry: curl -s -d grant_type=password -d username=admin -d password={DEMO_PASSWORD} "
                f"{stack.urls['issues']}/v1/auth/token"
            )
        print("Ctrl-C stops all three.", flush=True)
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(0.5)
        dead = [s for s, p in stack.processes.items() if p.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping…")
    finally:
        # A second Ctrl-C must not cut the stopping short and leave services running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_stack(stack)


if __name__ == "__main__":
    main()
