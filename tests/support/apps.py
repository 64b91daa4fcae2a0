"""Any of the three services as an app under test: its settings, its app, clients talking to it.

FastAPI builds each route's validation the first time an app matches it, about 0.1 s an app for a whole
service: building a new app for every test cost more than the tests themselves. So an app is built once
per service and settings (`AppPool`) and each test runs its lifespan afresh, on a database and a data
folder put back in their starting state: the state a test sees is new, only the routing is reused.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from services.issues.app import create_app as create_issues_app
from services.issues.auth.passwords import hash_secret
from services.issues.deps import IssuesState
from services.issues.models import metadata as issues_metadata
from services.issues.settings import IssuesSettings
from services.kit.db import Database
from services.kit.jwt import JWKSCache, TokenVerifier
from services.kit.settings import ServiceSettings
from services.kit.state import ServiceState, typed_state
from services.media.app import create_app as create_media_app
from services.media.models import metadata as media_metadata
from services.media.settings import MediaSettings
from services.scoring.app import create_app as create_scoring_app
from services.scoring.models import metadata as scoring_metadata
from services.scoring.settings import ScoringSettings
from tests.support.builders import TEST_PASSWORD, seed_tree
from tests.support.tokens import TokenMinter

ISSUER = "http://issues.test"
AUDIENCE = "huanzhi"

Seed = Callable[[AsyncSession], Awaitable[None]]
AppFactory = Callable[[Any, TokenVerifier | None], FastAPI]

# What every service gets under test: quiet logs, the test issuer.
COMMON_TEST_SETTINGS: dict[str, Any] = {
    "environment": "test",
    "log_json": False,
    "log_level": "WARNING",
    "token_issuer": ISSUER,
    "token_audience": AUDIENCE,
}


@dataclass(frozen=True)
class Service:
    """One service as the tests see it."""

    name: str
    base_url: str
    settings_class: type[ServiceSettings]
    metadata: MetaData
    factory: AppFactory
    defaults: Mapping[str, Any] = field(default_factory=dict)
    seed: Seed | None = None  # what its test databases hold besides the migrations' own rows

    def settings(self, **values: Any) -> Any:
        """The service's settings under test: common test values, the service's own, then `values`."""
        return self.settings_class(**{**COMMON_TEST_SETTINGS, **self.defaults, **values})

    def build(self, settings: Any, verifier: TokenVerifier | None = None) -> FastAPI:
        """A new app; scoring and media verify with `verifier` (default: the issuer's JWKS over HTTP)."""
        return self.factory(settings, verifier)

    def minter(self, app: FastAPI, test_minter: TokenMinter) -> TokenMinter:
        """Who signs tokens this running app accepts: the issuer itself, else the test keys."""
        if self.name == "issues":
            state = typed_state(app, IssuesState)
            return TokenMinter(state.keyring, state.settings.token_issuer, state.settings.token_audience)
        return test_minter


@functools.cache
def tree_password_hash() -> str:
    """TEST_PASSWORD hashed once, at the cost the issues service uses under test."""
    return hash_secret(TEST_PASSWORD, IssuesSettings(**COMMON_TEST_SETTINGS))


async def seed_issues(session: AsyncSession) -> None:
    """The test tree and its users."""
    await seed_tree(session, tree_password_hash())


ISSUES = Service(
    "issues",
    ISSUER,
    IssuesSettings,
    issues_metadata,
    lambda settings, _verifier: create_issues_app(settings),
    defaults={"media_url": ""},  # no media peer: nothing is called
    seed=seed_issues,
)
SCORING = Service(
    "scoring",
    "http://scoring.test",
    ScoringSettings,
    scoring_metadata,
    lambda settings, verifier: create_scoring_app(settings, verifier=verifier),
)
MEDIA = Service(
    "media",
    "http://media.test",
    MediaSettings,
    media_metadata,
    lambda settings, verifier: create_media_app(settings, verifier=verifier),
    defaults={"public_base_url": "http://media.test", "sweep_interval_seconds": 3600, "store": "local"},
)
SERVICES = {s.name: s for s in (ISSUES, SCORING, MEDIA)}


def _settings_key(settings: ServiceSettings) -> str:
    values = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in settings.model_dump().items()
    }
    return type(settings).__name__ + json.dumps(values, sort_keys=True, default=str)


class AppPool:
    """Apps built once per service and settings; a test borrows one and runs its lifespan."""

    def __init__(self, test_minter: TokenMinter) -> None:
        self.test_minter = test_minter
        self._apps: dict[str, FastAPI] = {}

    def app(self, service: Service, settings: ServiceSettings) -> FastAPI:
        key = _settings_key(settings)
        if key not in self._apps:
            self._apps[key] = service.build(settings, self.test_minter.verifier())
        return self._apps[key]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan run (its state built) for the block; overrides a test set are dropped."""
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        app.dependency_overrides.clear()


@asynccontextmanager
async def client_for(
    app: FastAPI, base_url: str, *, address: str | None = None, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process; `address` is the client address the app sees."""
    transport = httpx.ASGITransport(
        app=app,
        client=(address, 40000) if address else ("127.0.0.1", 123),
        raise_app_exceptions=raise_app_exceptions,
    )
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


def bare_state(database: Database, settings: ServiceSettings, http: httpx.AsyncClient) -> ServiceState[Any]:
    """The kit's state alone, for a bare app of a few routes: a database, and no keys trusted."""

    async def no_keys() -> dict[str, Any]:
        return {"keys": []}

    verifier = TokenVerifier(JWKSCache(no_keys), issuer="http://kit.test", audience="kit")
    return ServiceState(settings=settings, database=database, http=http, verifier=verifier)
