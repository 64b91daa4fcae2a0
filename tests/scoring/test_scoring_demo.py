"""The scoring demo, seeded the way the launcher seeds it: through the APIs, against a real issues app
holding its demo county (in-process, reached over the ASGI transport, signing with the keys the scoring
app under test trusts). A newcomer then sees rankings, lists, escalations and bulletins at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.issues.auth.keys import KeyRing
from services.kit.migrations import upgrade
from services.kit.peers import ClientCredentials, Peer
from services.kit.settings import DEV_SERVICE_SECRET
from services.kit.state import typed_state
from services.scoring.demo import DEMO_SCOPE, DemoSeedingFailed, seed_demo_scoring
from services.scoring.deps import ScoringState
from services.scoring.periods import SHANGHAI, PeriodKind, period_of
from services.scoring.publishing.models import Bulletin, PeriodScoreRow, Publication
from services.scoring.rounds.models import Round, Scorecard
from tests.support.apps import ISSUER, ISSUES, client_for, running

Count = Callable[..., Any]


@pytest.fixture(scope="module")
def issues_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty, migrated issues database (SQLite): the demo county is put in by the app's own seeding."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('demo-issues') / 'issues.db'}"
    upgrade("issues", url)
    return url


@dataclass
class DemoStack:
    issues: httpx.AsyncClient
    scoring: httpx.AsyncClient


@pytest.fixture
async def stack(
    app: FastAPI, client: httpx.AsyncClient, issues_database: str, test_keyring: KeyRing, tmp_path: Path
) -> AsyncIterator[DemoStack]:
    keys = tmp_path / "keys"
    keys.mkdir()
    for key in test_keyring.keys:  # the issuer signs with the keys the scoring app under test trusts
        (keys / f"{key.kid}.pem").write_text(key.private_pem)
    settings = ISSUES.settings(
        database_url=issues_database, data_dir=tmp_path / "issues", seed_demo=True, signing_keys_dir=keys
    )
    issues_app = ISSUES.build(settings)
    state = typed_state(app, ScoringState)
    saved = state.issues
    async with running(issues_app), client_for(issues_app, ISSUER) as issues:
        transport = httpx.ASGITransport(app=issues_app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as peer_http:
            token = ClientCredentials(peer_http, ISSUER + "/v1/auth/token", "svc-scoring", DEV_SERVICE_SECRET)
            state.issues = Peer("issues", ISSUER, peer_http, token)
            try:
                yield DemoStack(issues, client)
            finally:
                state.issues = saved


async def login(issues: httpx.AsyncClient, username: str) -> dict[str, str]:
    answer = await issues.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": "huanzhi-demo-2026"},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_the_demo_publishes_two_months_of_the_demo_county_once(
    stack: DemoStack, count_rows: Count
) -> None:
    today = datetime.now(SHANGHAI).date()
    outcome = await seed_demo_scoring(stack.issues, stack.scoring, today=today)
    this_month = period_of(PeriodKind.month, today)
    months = (this_month.previous(2).code, this_month.previous(1).code)
    assert (outcome.periods, outcome.rounds, outcome.scorecards, outcome.skipped) == (months, 4, 20, False)

    admin = await login(stack.issues, "admin")
    periods = (await stack.scoring.get("/v1/periods", headers=admin)).json()["items"]
    assert [p["period"] for p in periods] == list(reversed(months))
    assert {p["scope"]["code"] for p in periods} == {DEMO_SCOPE}
    assert {p["summary"]["scored"] for p in periods} == {5}
    ranking = (
        await stack.scoring.get(
            "/v1/rankings", params={"period": months[1], "parent": DEMO_SCOPE}, headers=admin
        )
    ).json()["items"]
    assert sorted(e["rank"] for e in ranking)[0] == 1 and len(ranking) == 5
    assert all(e["change"] is not None for e in ranking)  # the month before is published too
    lists = (await stack.scoring.get("/v1/lists", params={"period": months[1]}, headers=admin)).json()[
        "items"
    ]
    assert {e["list_code"] for e in lists} == {"red-monthly", "black-monthly"}
    bulletins = (await stack.scoring.get("/v1/bulletins", headers=admin)).json()["items"]
    assert sorted(b["kind"] for b in bulletins) == ["period", "period", "weekly"]

    village = await login(stack.issues, "village")
    mine = (await stack.scoring.get("/v1/rankings", headers=village)).json()["items"]
    assert {e["unit"]["code"] for e in mine} == {"370282103201"}

    before = [await count_rows(t) for t in (Round, Scorecard, Publication, PeriodScoreRow, Bulletin)]
    again = await seed_demo_scoring(stack.issues, stack.scoring, today=today)
    assert again.skipped
    assert [await count_rows(t) for t in (Round, Scorecard, Publication, PeriodScoreRow, Bulletin)] == before


async def test_a_refused_call_is_reported_not_hidden(stack: DemoStack) -> None:
    with pytest.raises(DemoSeedingFailed, match="/v1/auth/token answered 401"):
        await seed_demo_scoring(
            stack.issues, stack.scoring, today=datetime.now(SHANGHAI).date(), password="x"
        )
