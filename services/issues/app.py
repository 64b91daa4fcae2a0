"""The issues service: identity and tokens, the region tree, issues and their lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from services.issues.auth import revocations
from services.issues.auth.keys import KeyRing, keys_from_pem_bundle
from services.issues.auth.routes import router as auth_router
from services.issues.auth.throttle import FailureThrottle
from services.issues.auth.tokens import mint_access_token
from services.issues.calendar.routes import router as calendar_router
from services.issues.cases import evidence
from services.issues.cases.demo import seed_demo_issues
from services.issues.cases.routes import router as cases_router
from services.issues.categories.routes import router as categories_router
from services.issues.clients.routes import router as clients_router
from services.issues.db import idempotency_keys, outbox_rows
from services.issues.demo import seed_demo_data
from services.issues.deps import IssuesState
from services.issues.feed.routes import router as feed_router
from services.issues.ledger.routes import router as ledger_router
from services.issues.regions.routes import router as regions_router
from services.issues.settings import IssuesSettings
from services.issues.stats.routes import router as stats_router
from services.issues.users.routes import router as users_router
from services.kit.app import ApiInfo, build_app
from services.kit.auth import caller_router
from services.kit.db import Database
from services.kit.identity import ROLE_SCOPES, ROOT_PATH, Role, Subject, service_client_id
from services.kit.jwt import JWKSCache, TokenVerifier
from services.kit.outbox import Outbox
from services.kit.peers import Peer, TokenSource
from services.kit.recent import Recent
from services.kit.revocation import RevocationList

TAGS = [
    {"name": "auth", "description": "Tokens: password, client credentials, WeChat mini-program; the JWKS."},
    {
        "name": "regions",
        "description": "The region tree (province › … › village › grid), limited to the caller's subtree.",
    },
    {"name": "users", "description": "Staff and citizen accounts."},
    {"name": "clients", "description": "API clients for integrations (client credentials)."},
    {
        "name": "categories",
        "description": "The county's issue categories: default deadlines and extra fields.",
    },
    {
        "name": "calendar",
        "description": "The working-day calendar deadlines are counted on (holidays, 调休).",
    },
    {
        "name": "issues",
        "description": "Problems found in villages, from report to 销号: actions, evidence checks, history.",
    },
]


def create_app(settings: IssuesSettings | None = None) -> FastAPI:
    settings = settings or IssuesSettings()

    @asynccontextmanager
    async def open_state(database: Database, http: httpx.AsyncClient) -> AsyncIterator[IssuesState]:
        keyring = keyring_from(settings)

        async def own_jwks() -> dict[str, Any]:
            jwks: dict[str, Any] = keyring.jwks()
            return jwks

        # The issuer verifies with its own keys; refreshing re-reads them, no HTTP to itself.
        keys = JWKSCache(own_jwks, ttl=settings.jwks_cache_seconds, min_refresh_interval=0)

        async def own_revocations() -> dict[str, Any]:
            return await revocations.recent(database, settings.access_token_seconds)

        # Read from its own database, and kept briefly: a disabled officer's token stops here at once.
        revoked = RevocationList(own_revocations, ttl=min(1.0, settings.revocation_cache_seconds))
        media = (
            Peer("media", settings.media_url, http, _self_minted(keyring, settings))
            if settings.media_url
            else None
        )
        outbox = Outbox(database, outbox_rows, {})
        if settings.seed_demo:
            async with database.transaction() as session:
                await seed_demo_data(session, settings=settings)
                await seed_demo_issues(session)
        state = IssuesState(
            settings=settings,
            database=database,
            http=http,
            verifier=TokenVerifier(
                keys, issuer=settings.token_issuer, audience=settings.token_audience, revocations=revoked
            ),
            keyring=keyring,
            recent_categories=Recent(settings.reference_cache_seconds),
            recent_years=Recent(settings.reference_cache_seconds),
            login_throttle=FailureThrottle(
                settings.login_max_failures,
                settings.login_failure_window_seconds,
                limits={
                    "account": settings.login_max_failures_per_account,
                    "addr": settings.login_max_failures_per_address,
                },
                delays={"account": (settings.login_delay_after_failures, settings.login_max_delay_seconds)},
            ),
            media=media,
            outbox=outbox,
        )
        # Read from the state when run, so the media peer can be replaced (tests wire media in-process).
        outbox.handlers[evidence.ATTACH] = lambda payload: evidence.attach(state.media, payload)
        async with outbox.retrying(settings.outbox_interval_seconds):
            yield state

    return build_app(
        settings,
        api=ApiInfo(
            title="Huanzhi issues (问题)",
            description="Identity and tokens, the region tree, issue intake and the whole lifecycle "
            "(reported › assigned › submitted › closed), statistics, exports, webhooks and Open311.",
            tags=TAGS,
        ),
        routers=[
            auth_router,
            caller_router("/v1/auth/caller", ["auth"]),
            regions_router,
            users_router,
            clients_router,
            categories_router,
            calendar_router,
            stats_router,
            ledger_router,
            feed_router,
            cases_router,
        ],
        open_state=open_state,
        idempotency=idempotency_keys,
        body_limits={"/v1/regions/import": 10 * 1_048_576},
    )


def keyring_from(settings: IssuesSettings) -> KeyRing:
    """Keys from the environment, else from the keys folder; the embedded default generates one once."""
    if settings.signing_keys_pem is not None:
        return KeyRing(keys_from_pem_bundle(settings.signing_keys_pem.get_secret_value()), ordered=True)
    folder = settings.signing_keys_dir or settings.data_dir / "keys"
    return KeyRing.from_folder(folder, generate_if_empty=settings.signing_keys_dir is None)


def _self_minted(keyring: KeyRing, settings: IssuesSettings) -> TokenSource:
    """The issuer signs its own service token for calls to its peers."""
    client_id = service_client_id(settings.service_name)

    async def token() -> str:
        return mint_access_token(
            keyring,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            lifetime_seconds=300,
            subject=str(Subject.client(client_id)),
            role=Role.service,
            region="*",
            region_path=ROOT_PATH,
            scopes=ROLE_SCOPES[Role.service],
            name=client_id,
        ).access_token

    return token
