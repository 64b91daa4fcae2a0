"""The scoring service: rubrics, rounds, scorecards, rankings, red/black lists, household points."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from services.kit.app import build_app
from services.kit.auth import caller_router
from services.kit.jwt import JWKSCache
from services.kit.peers import ClientCredentials, Peer
from services.scoring.db import idempotency_keys
from services.scoring.settings import ScoringSettings


def create_app(
    settings: ScoringSettings | None = None, jwks_cache: Callable[[FastAPI], JWKSCache] | None = None
) -> FastAPI:
    """`jwks_cache` replaces fetching the issuer's keys over HTTP (tests)."""
    settings = settings or ScoringSettings()

    def peers(app: FastAPI) -> dict[str, Peer]:
        token = ClientCredentials(
            app.state.http,
            settings.issues_url.rstrip("/") + "/v1/auth/token",
            settings.service_client_id,
            settings.service_client_secret.get_secret_value(),
        )
        return {"issues": Peer("issues", settings.issues_url, app.state.http, token)}

    return build_app(
        settings,
        title="Huanzhi scoring (考评)",
        description="Rubrics, inspection rounds, scorecards, rankings, red/black lists, escalations, "
        "household points and bulletins. Tokens come from the issues service.",
        version="0.1.0",
        routers=[caller_router("/v1/scoring/caller", ["caller"])],
        peers=peers,
        idempotency=idempotency_keys,
        jwks_cache=jwks_cache,
    )
