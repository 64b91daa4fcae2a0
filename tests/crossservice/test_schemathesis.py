"""Schemathesis against the three running services: every operation of each OpenAPI, as an admin.

The run mutates what it reaches (users disabled, regions moved, clients revoked), so it gets a stack of its
own, seeded with the demo data the launcher gives (`deploy/up.sh`), and leaves the session's shared stack
alone. It runs once: on PostgreSQL where it is reachable (always in CI), else on SQLite. Bounded and
reproducible: deterministic generation, a few examples per operation (deploy/schemathesis/schemathesis.toml);
its hooks (deploy/schemathesis/hooks.py) say what a schema cannot. It fails on any 5xx but a documented
503, on a schema-valid request refused or a schema-violating one taken, on an undocumented status, header
or body, on a wrong `Allow`, and on a run that tested too little (rejected credentials, a throttled login).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from services.devserver import Stack, start_stack, stop_stack
from services.issues.demo import DEMO_PASSWORD
from tests.crossservice.conftest import HOST, SERVICES, LiveStack
from tests.databases import _pg, pg_url
from tests.support.ports import free_port

pytestmark = [
    pytest.mark.crossservice,
    # On in the test command (deploy/test.sh sets HUANZHI_SCHEMATHESIS=1), so CI holds every operation to
    # its OpenAPI; a plain `pytest` leaves it out (~80 s on its own stack).
    pytest.mark.skipif(
        os.environ.get("HUANZHI_SCHEMATHESIS") != "1", reason="set HUANZHI_SCHEMATHESIS=1 to run schemathesis"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "schemathesis" / "schemathesis.toml"
RUN_SECONDS = 420  # the run is bounded by its examples; this only stops a hang
FUZZ_ENV = {
    "HUANZHI_ISSUES_ENVIRONMENT": "test",  # cheap password hashes for the logins it tries
    # It tries the token endpoint with made-up passwords: throttling would answer 429 to the rest.
    "HUANZHI_ISSUES_LOGIN_MAX_FAILURES": "1000000",
    "HUANZHI_ISSUES_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
    "HUANZHI_ISSUES_LOG_LEVEL": "ERROR",
    "HUANZHI_SCORING_LOG_LEVEL": "ERROR",
    "HUANZHI_MEDIA_LOG_LEVEL": "ERROR",
}


@pytest.fixture(scope="module")
def fuzz_stack(
    live_stack: LiveStack, have_postgres: bool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    backend = live_stack.backend
    if backend == "sqlite" and have_postgres:
        pytest.skip("schemathesis runs once, on PostgreSQL")
    extra = dict(FUZZ_ENV)
    databases: list[str] = []
    if backend == "postgres":
        prefix = f"hz_st_{uuid.uuid4().hex[:8]}"
        for service in SERVICES:
            name = f"{prefix}_{service}"
            asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
            databases.append(name)
            extra[f"HUANZHI_{service.upper()}_DATABASE_URL"] = pg_url(name)
    ports = {service: free_port() for service in SERVICES}
    try:
        stack = start_stack(tmp_path_factory.mktemp("fuzz"), ports, host=HOST, extra_env=extra, quiet=True)
        try:
            yield stack
        finally:
            stop_stack(stack)
    finally:
        for name in databases:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def admin_session(issuer: str) -> tuple[str, int]:
    """The demo admin's token and user id, from the issuer as any client gets them."""
    with httpx.Client(timeout=10) as http:
        r = http.post(
            issuer + "/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": DEMO_PASSWORD},
        )
        assert r.status_code == 200, r.text
        token = str(r.json()["access_token"])
        me = http.get(issuer + "/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        return token, int(me.json()["id"])


def schemathesis(url: str, token: str, admin_id: int) -> tuple[int, str, float]:
    env = {
        **os.environ,
        "HUANZHI_SCHEMATHESIS_TOKEN": token,
        "HUANZHI_SCHEMATHESIS_SELF": str(admin_id),
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/openapi.json",
            "--no-color",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


CALLER_PATHS = {"issues": "/v1/auth/caller", "scoring": "/v1/scoring/caller", "media": "/v1/media/caller"}


def test_the_running_services_do_what_their_openapi_says(fuzz_stack: Stack) -> None:
    token, admin_id = admin_session(fuzz_stack.urls["issues"])
    for service in SERVICES:  # the token is good everywhere: a run of 401s would test nothing
        r = httpx.get(
            fuzz_stack.urls[service] + CALLER_PATHS[service], headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, (service, r.text)
    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        runs = {
            service: pool.submit(schemathesis, fuzz_stack.urls[service], token, admin_id)
            for service in SERVICES
        }
        results = {service: run.result() for service, run in runs.items()}
    failed = {service: output for service, (code, output, _) in results.items() if code != 0}
    for service, (code, output, seconds) in results.items():
        summary = output[output.rfind("=== SUMMARY") :] if "=== SUMMARY" in output else output[-2000:]
        print(f"--- schemathesis {service}: exit {code} in {seconds:.1f} s\n{summary}")
    assert not failed, "\n\n".join(f"===== {service} =====\n{output}" for service, output in failed.items())
