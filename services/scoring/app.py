"""The scoring service: rubrics, rounds, scorecards, rankings, red/black lists, household points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.kit.app import ApiInfo, build_app, issuer_verifier
from services.kit.auth import caller_router
from services.kit.db import Database
from services.kit.jwt import TokenVerifier
from services.kit.outbox import Outbox
from services.kit.peers import ClientCredentials, Peer
from services.scoring.db import idempotency_keys, outbox_rows
from services.scoring.deps import ScoringState
from services.scoring.publishing.routes import bulletin_router
from services.scoring.publishing.routes import router as publishing_router
from services.scoring.rounds import photos
from services.scoring.rounds.routes import router as rounds_router
from services.scoring.rubrics.routes import router as rubrics_router
from services.scoring.settings import ScoringSettings


def create_app(settings: ScoringSettings | None = None, *, verifier: TokenVerifier | None = None) -> FastAPI:
    """`verifier` replaces verifying with keys fetched from the issuer (tests)."""
    settings = settings or ScoringSettings()

    @asynccontextmanager
    async def open_state(database: Database, http: httpx.AsyncClient) -> AsyncIterator[ScoringState]:
        token = ClientCredentials(
            http,
            settings.token_issuer.rstrip("/") + "/v1/auth/token",
            settings.service_client_id,
            settings.service_client_secret.get_secret_value(),
        )
        outbox = Outbox(database, outbox_rows, {})
        state = ScoringState(
            settings=settings,
            database=database,
            http=http,
            verifier=verifier or issuer_verifier(settings, http),
            issues=Peer("issues", settings.token_issuer, http, token),
            media=Peer("media", settings.media_url, http, token) if settings.media_url else None,
            outbox=outbox,
        )
        # Read from the state when run, so tests can replace the media peer.
        outbox.handlers[photos.PIN] = lambda payload: photos.pin(state.media, payload)
        async with outbox.retrying(settings.outbox_interval_seconds):
            yield state

    return build_app(
        settings,
        api=ApiInfo(
            title="Huanzhi scoring (考评)",
            description="Rubrics, inspection rounds, scorecards, rankings, red/black lists, escalations, "
            "household points and bulletins. Tokens come from the issues service.",
        ),
        routers=[
            caller_router("/v1/scoring/caller", ["caller"]),
            rubrics_router,
            rounds_router,
            publishing_router,
            bulletin_router,
        ],
        open_state=open_state,
        idempotency=idempotency_keys,
    )
