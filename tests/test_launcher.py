"""The README's first command: the launcher starts all three services, and Ctrl-C (or SIGTERM) stops them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.media.images import jpeg

pytestmark = pytest.mark.crossservice  # it starts the three services; on the embedded defaults (SQLite)

HOST = "127.0.0.1"

ROOT = Path(__file__).resolve().parents[2]


def _three_free_ports() -> int:
    """A base port with it and the next two free (the launcher takes base, +1, +2)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            base = int(probe.getsockname()[1])
        if base > 65000:
            continue
        try:
            for port in (base, base + 1, base + 2):
                with socket.socket() as s:
                    s.bind((HOST, port))
        except OSError:
            continue
        return base
    raise RuntimeError("no three consecutive free ports")


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


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_launcher_serves_the_demo_county_and_stops_all_three(
    tmp_path: Path, stop: signal.Signals
) -> None:
    base = _three_free_ports()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUANZHI_")}
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.devserver",
            "--data-dir",
            str(tmp_path / "data"),
            "--port-base",
            str(base),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As a background job of a script: SIGINT ignored on entry, which the launcher must undo.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert launcher.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while not any("Ctrl-C stops all three" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            lines.append(launcher.stdout.readline())
        printed = "".join(lines)
        assert f"http://127.0.0.1:{base}" in printed and "admin" in printed and "officer" in printed

        token = httpx.post(
            f"http://127.0.0.1:{base}/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": "huanzhi-demo-2026"},
        ).json()["access_token"]
        regions = httpx.get(
            f"http://127.0.0.1:{base}/v1/regions/370282/children",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert [r["code"] for r in regions["items"]] == ["370282103", "370282104"]
        for port in (base + 1, base + 2):
            me = httpx.get(f"http://127.0.0.1:{port}/readyz")
            assert me.status_code == 200, me.text

        # A photo in and its display copy out through the signed link, on these (not the default) ports.
        village = httpx.post(
            f"http://127.0.0.1:{base}/v1/auth/token",
            data={"grant_type": "password", "username": "village", "password": "huanzhi-demo-2026"},
        ).json()["access_token"]
        media, bearer = f"http://127.0.0.1:{base + 2}", {"Authorization": f"Bearer {village}"}
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
        services = _children(launcher.pid)
        assert len(services) == 3

        launcher.send_signal(stop)
        assert launcher.wait(timeout=20) == 0
        for pid in services:
            assert not _alive(pid)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
