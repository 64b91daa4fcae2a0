"""kit.app: the heap a process built while starting is frozen out of the cyclic collector's walks, once."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import services.kit.app as kit_app
from services.issues.app import create_app as create_issues_app
from services.issues.settings import IssuesSettings


async def test_the_first_app_to_start_freezes_the_heap_and_no_later_one_does_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen: list[int] = []
    monkeypatch.setattr(kit_app, "_heap_frozen", False)  # as in a new process
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(len(gc.get_objects())))
    for n in range(2):
        settings = IssuesSettings(
            environment="test",
            database_url=f"sqlite+aiosqlite:///{tmp_path / f'issues-{n}.db'}",
            data_dir=tmp_path,
            media_url="",
            log_json=False,
        )
        app = create_issues_app(settings)
        async with app.router.lifespan_context(app):
            assert len(frozen) == 1  # by the time requests are served
    assert len(frozen) == 1
