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
from services.kit.peers import ClientCredentials, Peer
from services.scoring.db import idempotency_keys
from services.scoring.deps import ScoringState
from services.scoring.publishing.routes import bulletin_router
from services.scoring.publishing.routes import router as publishing_router
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
        yield ScoringState(
            settings=settings,
            database=database,
            http=http,
            verifier=verifier or issuer_verifier(settings, http),
            issues=Peer("issues", settings.token_issuer, http, token),
        )

    return build_app(
        settings,
        api=ApiInfo(
            title="Huanzhi scoring (考评)",
            description="Rubrics, inspection rounds, scorecards, rankings, red/black lists, escalations, "
            "household points and bulletins. Tokens come from the issues service.",
        ),
        routers=[caller_router("/v1/scoring/caller", ["caller"]), publishing_router, bulletin_router],
        open_state=open_state,
        idempotency=idempotency_keys,
    )
