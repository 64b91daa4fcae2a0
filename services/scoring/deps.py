"""The scoring service's running state and the dependencies its routes declare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.kit.deps import SessionDep
from services.kit.outbox import Outbox
from services.kit.peers import Peer
from services.kit.state import ServiceState, typed_state
from services.scoring.feed import IssuesFeed
from services.scoring.settings import ScoringSettings

__all__ = [
    "IssuesFeedDep",
    "IssuesPeerDep",
    "MediaPeerDep",
    "OutboxDep",
    "ScoringState",
    "SessionDep",
    "SettingsDep",
    "StateDep",
]


@dataclass(kw_only=True)
class ScoringState(ServiceState[ScoringSettings]):
    issues: Peer  # regions and issue statistics, read with this service's own client credentials
    media: Peer | None  # scorecard photos; None where no media URL is configured
    outbox: Outbox  # effects after the commit: pinning scorecard photos in media


def _state(request: Request) -> ScoringState:
    return typed_state(request.app, ScoringState)


StateDep = Annotated[ScoringState, Depends(_state)]


def _settings(state: StateDep) -> ScoringSettings:
    return state.settings


def _issues(state: StateDep) -> Peer:
    return state.issues


SettingsDep = Annotated[ScoringSettings, Depends(_settings)]
IssuesPeerDep = Annotated[Peer, Depends(_issues)]


def _feed(state: StateDep) -> IssuesFeed:
    """A fresh reader of the issues service per request (it counts the calls it makes)."""
    return IssuesFeed(state.issues)


IssuesFeedDep = Annotated[IssuesFeed, Depends(_feed)]


def _media(state: StateDep) -> Peer | None:
    return state.media


def _outbox(state: StateDep) -> Outbox:
    return state.outbox


MediaPeerDep = Annotated[Peer | None, Depends(_media)]
OutboxDep = Annotated[Outbox, Depends(_outbox)]
