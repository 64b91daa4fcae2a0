"""The README's first command: the launcher starts all three services, and Ctrl-C (or SIGTERM) stops them;
the HUANZHI_* environment and the data folder's `.env` reach the services, PostgreSQL URLs included."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.devserver import launcher_wiring, stack_environment
from services.issues.demo import DEMO_PASSWORD
from tests.databases import PG_HOST, PG_PORT, PG_USER, _pg, pg_url
from tests.media.images import jpeg
from tests.support.ports import free_ports
from tests.wechat_fake import APPID, SECRET, running_fake_wechat

pytestmark = pytest.mark.crossservice  # it starts the three services; on the embedded defaults (SQLite)

HOST = "127.0.0.1"

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(c) for c in children]
    return found


@dataclass
class Launched:
    """The launcher as a process, its output up to "Ctrl-C stops all three", and its URLs."""

    process: subprocess.Popen[str]
    printed: str
    base: int
    urls: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.urls = {
            s: f"http://{HOST}:{self.base + i}" for i, s in enumerate(("issues", "scoring", "media"))
        }

    def token(self, username: str = "admin") -> dict[str, object]:
        answer = httpx.post(
            self.urls["issues"] + "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": DEMO_PASSWORD},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    def bearer(self, username: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)['access_token']}"}


def _environment(given: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any HUANZHI_* of its own, plus `given`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUANZHI_")}
    env.update(given or {})
    return env


@contextmanager
def launched(data_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[Launched]:
    """`python -m services.devserver` on three free ports with exactly `env`, until it says it is up;
    killed afterwards if the test has not stopped it."""
    base = free_ports(3)
    process = subprocess.Popen(
        [sys.executable, "-m", "services.devserver", "--data-dir", str(data_dir), "--port-base", str(base)],
        cwd=ROOT,
        env=dict(env if env is not None else _environment()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As a background job of a script: SIGINT ignored on entry, which the launcher must undo.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("Ctrl-C stops all three" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(lines)
            lines.append(line)
        yield Launched(process, "".join(lines), base)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_launcher_serves_the_demo_county_and_stops_all_three(
    tmp_path: Path, stop: signal.Signals
) -> None:
    with launched(tmp_path / "data") as stack:
        base = stack.base
        assert f"http://127.0.0.1:{base}" in stack.printed
        assert "admin" in stack.printed and "officer" in stack.printed

        regions = httpx.get(f"http://127.0.0.1:{base}/v1/regions/370282/children", headers=stack.bearer())
        assert [r["code"] for r in regions.json()["items"]] == ["370282103", "370282104"]
        for port in (base + 1, base + 2):
            me = httpx.get(f"http://127.0.0.1:{port}/readyz")
            assert me.status_code == 200, me.text

        # A photo in and its display copy out through the signed link, on these (not the default) ports.
        media, bearer = f"http://127.0.0.1:{base + 2}", stack.bearer("village")
        photo = httpx.post(
            f"{media}/v1/photos",
            headers=bearer,
            files={"file": ("a.jpg", jpeg(640, 480, seed=3), "image/jpeg")},
        )
        assert photo.status_code == 201, photo.text
        link = httpx.get(f"{media}/v1/photos/{photo.json()['id']}/content?variant=display", headers=bearer)
        assert link.status_code == 307 and link.headers["location"].startswith(f"{media}/")
        display = httpx.get(link.headers["location"])
        assert display.status_code == 200 and display.headers["content-type"] == "image/jpeg"
        services = _children(stack.process.pid)
        assert len(services) == 3

        stack.process.send_signal(stop)
        assert stack.process.wait(timeout=20) == 0
        for pid in services:
            assert not _alive(pid)


# ---- configuration: what the launcher passes through, and what it decides itself ----


def test_huanzhi_variables_given_to_the_launcher_reach_the_services(tmp_path: Path) -> None:
    with running_fake_wechat() as wechat:
        env = _environment(
            {
                "HUANZHI_ISSUES_WECHAT_APPID": APPID,
                "HUANZHI_ISSUES_WECHAT_SECRET": SECRET,
                "HUANZHI_ISSUES_WECHAT_BASE_URL": wechat.url,
            }
        )
        with launched(tmp_path / "data", env) as stack:
            login = httpx.post(stack.urls["issues"] + "/v1/auth/wechat", json={"code": "good-launcher"})
            # Not 503 wechat_not_configured: the appid, secret and WeChat's URL all reached the issues service.
            assert login.status_code == 200, login.text
            assert login.json()["created"] is True
            assert [r["appid"] for r in wechat.requests] == [APPID]


def test_the_data_folders_env_file_is_read_and_the_launcher_keeps_its_wiring(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ".env").write_text(
        "# the launcher's own configuration\n"
        "HUANZHI_ISSUES_ACCESS_TOKEN_SECONDS=600\n"
        # Overruled: the stack's wiring is the launcher's, so the tokens it verifies are the issuer's.
        "HUANZHI_SCORING_TOKEN_ISSUER=http://127.0.0.1:9\n"
    )
    with launched(data) as stack:
        issued = stack.token("officer")
        assert issued["expires_in"] == 600
        caller = httpx.get(
            stack.urls["scoring"] + "/v1/scoring/caller",
            headers={"Authorization": f"Bearer {issued['access_token']}"},
        )
        assert caller.status_code == 200, caller.text
        assert "note: the launcher sets HUANZHI_SCORING_TOKEN_ISSUER" in stack.printed


def test_the_environment_wins_over_the_env_file_and_the_wiring_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("HUANZHI_"):
            monkeypatch.delenv(name)
    (tmp_path / ".env").write_text(
        "HUANZHI_ISSUES_WECHAT_APPID=from-file\n"
        "HUANZHI_MEDIA_STORE='s3'\n"
        "export HUANZHI_ISSUES_SEED_DEMO=false\n"
        "HUANZHI_ISSUES_TOKEN_ISSUER=http://file.example\n"
    )
    monkeypatch.setenv("HUANZHI_ISSUES_WECHAT_APPID", "from-environment")
    monkeypatch.setenv("HUANZHI_MEDIA_TOKEN_ISSUER", "http://environment.example")
    ports = {"issues": 18001, "scoring": 18002, "media": 18003}
    env = stack_environment(tmp_path, ports)
    assert env["HUANZHI_ISSUES_WECHAT_APPID"] == "from-environment"
    assert env["HUANZHI_MEDIA_STORE"] == "s3"
    assert env["HUANZHI_ISSUES_SEED_DEMO"] == "false"
    for service in ("ISSUES", "SCORING", "MEDIA"):
        assert env[f"HUANZHI_{service}_TOKEN_ISSUER"] == "http://127.0.0.1:18001"
        assert env[f"HUANZHI_{service}_DATA_DIR"] == str(tmp_path.resolve())
    assert set(launcher_wiring(tmp_path, ports)) == {
        *(f"HUANZHI_{s}_{v}" for s in ("ISSUES", "SCORING", "MEDIA") for v in ("DATA_DIR", "TOKEN_ISSUER")),
        "HUANZHI_ISSUES_MEDIA_URL",
        "HUANZHI_SCORING_MEDIA_URL",
        "HUANZHI_MEDIA_PUBLIC_BASE_URL",
    }
    # Without a file and a word of its own, the demo county is seeded.
    assert stack_environment(tmp_path / "elsewhere", ports)["HUANZHI_ISSUES_SEED_DEMO"] == "true"


async def _tables(database: str) -> set[str]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database, timeout=5)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


def test_the_launcher_runs_the_stack_on_postgresql(tmp_path: Path, have_postgres: bool) -> None:
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    names = {
        service: f"hz_launch_{uuid.uuid4().hex[:8]}_{service}" for service in ("issues", "scoring", "media")
    }
    for name in names.values():
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        env = _environment({f"HUANZHI_{s.upper()}_DATABASE_URL": pg_url(name) for s, name in names.items()})
        with launched(tmp_path / "data", env) as stack:
            regions = httpx.get(stack.urls["issues"] + "/v1/regions/370282/children", headers=stack.bearer())
            assert regions.status_code == 200, regions.text
            assert [r["code"] for r in regions.json()["items"]] == ["370282103", "370282104"]
        # Migrated by the launcher (each history's version table is there), and no SQLite file beside.
        for service, name in names.items():
            assert f"alembic_version_{service}" in asyncio.run(_tables(name))
        assert not list((tmp_path / "data").glob("*.db"))
    finally:
        for name in names.values():
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
