"""The media service's running state and the dependencies its routes declare."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.kit.deps import SessionDep
from services.kit.observability import ReadinessCheck
from services.kit.outbox import Outbox
from services.kit.state import ServiceState, typed_state
from services.media.photos.service import Intake
from services.media.settings import MediaSettings
from services.media.storage import ObjectStore

__all__ = ["IntakeDep", "MediaState", "SessionDep", "SettingsDep", "StateDep", "StoreDep"]


@dataclass(kw_only=True)
class MediaState(ServiceState[MediaSettings]):
    store: ObjectStore
    outbox: Outbox
    intake: Intake
    # What the sweeper removed, by kind (services/media/leftovers.py): exported as media_swept_total.
    swept: Counter[str] = field(default_factory=Counter)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        return {**super().readiness_checks(), "object_store": self._store_answers}

    async def _store_answers(self) -> None:
        if not await self.store.healthy():
            raise ConnectionError("object store unreachable")


# `async def` though nothing is awaited: FastAPI runs a plain `def` dependency in its threadpool, a thread
# hand-off per dependency per request.
async def _state(request: Request) -> MediaState:
    return typed_state(request.app, MediaState)


StateDep = Annotated[MediaState, Depends(_state)]


async def _settings(state: StateDep) -> MediaSettings:
    return state.settings


async def _store(state: StateDep) -> ObjectStore:
    return state.store


async def _intake(state: StateDep) -> Intake:
    return state.intake


SettingsDep = Annotated[MediaSettings, Depends(_settings)]
StoreDep = Annotated[ObjectStore, Depends(_store)]
IntakeDep = Annotated[Intake, Depends(_intake)]
