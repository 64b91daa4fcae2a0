"""What a running service holds, typed: built in the app's lifespan, read by dependencies and middleware."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from fastapi import FastAPI

from services.kit.db import Database
from services.kit.jwt import TokenVerifier
from services.kit.observability import ReadinessCheck
from services.kit.settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
StateT = TypeVar("StateT", bound="ServiceState[Any]")


@dataclass(kw_only=True)
class ServiceState(Generic[SettingsT]):
    """The parts every service has; a service's own state class adds its own (a store, a key ring)."""

    settings: SettingsT
    database: Database
    http: httpx.AsyncClient
    verifier: TokenVerifier

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """What `/readyz` asks: this process's own dependencies only, never a peer service."""
        return {"database": self.database.ping}


def state_of(app: FastAPI) -> ServiceState[Any]:
    """The running app's state; only valid inside its lifespan."""
    state = getattr(app.state, "service", None)
    if not isinstance(state, ServiceState):
        raise RuntimeError("the app's lifespan has not run: no service state")
    return state


def typed_state(app: FastAPI, kind: type[StateT]) -> StateT:
    """The running app's state as the service's own class (a service's deps.py uses this)."""
    state = state_of(app)
    if not isinstance(state, kind):
        raise RuntimeError(f"the app's state is a {type(state).__name__}, not a {kind.__name__}")
    return state
