"""The issues service's running state and the dependencies its routes declare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request

from services.issues.auth.keys import KeyRing
from services.issues.auth.throttle import FailureThrottle
from services.issues.calendar.service import RecentYears
from services.issues.categories.models import Category
from services.issues.settings import IssuesSettings
from services.kit.deps import ReadSessionDep, SessionDep, statement_session
from services.kit.outbox import Outbox
from services.kit.peers import Peer
from services.kit.recent import Recent
from services.kit.state import ServiceState, typed_state

__all__ = [
    "HttpDep",
    "IssuesState",
    "KeyRingDep",
    "LoginThrottleDep",
    "ReadSessionDep",
    "SessionDep",
    "SettingsDep",
    "StateDep",
    "statement_session",
]


@dataclass(kw_only=True)
class IssuesState(ServiceState[IssuesSettings]):
    keyring: KeyRing
    login_throttle: FailureThrottle
    media: Peer | None  # None where no media URL is configured
    outbox: Outbox  # effects after the commit: pinning photos in media
    # What every report reads and the office rarely changes, as read a moment ago (settings'
    # reference_cache_seconds); the routes that change them clear these once the change has committed.
    recent_categories: Recent[str, Category | None]
    recent_years: RecentYears


# `async def` though nothing is awaited: FastAPI runs a plain `def` dependency in its threadpool, a thread
# hand-off per dependency per request.
async def _state(request: Request) -> IssuesState:
    return typed_state(request.app, IssuesState)


StateDep = Annotated[IssuesState, Depends(_state)]


async def _settings(state: StateDep) -> IssuesSettings:
    return state.settings


async def _keyring(state: StateDep) -> KeyRing:
    return state.keyring


async def _login_throttle(state: StateDep) -> FailureThrottle:
    return state.login_throttle


async def _http(state: StateDep) -> httpx.AsyncClient:
    return state.http


SettingsDep = Annotated[IssuesSettings, Depends(_settings)]
KeyRingDep = Annotated[KeyRing, Depends(_keyring)]
LoginThrottleDep = Annotated[FailureThrottle, Depends(_login_throttle)]
HttpDep = Annotated[httpx.AsyncClient, Depends(_http)]
