"""Rounds, their region snapshot, scorecards with every change kept, and the results a closed round froze."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field

from services.kit.db import UTCDateTime, utcnow
from services.scoring.db import ScoringTable

__all__ = [
    "Round",
    "RoundKind",
    "RoundResult",
    "RoundStatus",
    "RoundUnit",
    "Scorecard",
    "ScorecardRevision",
]


class RoundKind(StrEnum):
    inspection = "inspection"  # 督查检查: twice a month, 上旬 and 下旬
    covert = "covert"  # 暗访
    third_party = "third_party"  # 第三方评估
    satisfaction = "satisfaction"  # 群众满意度调查


class RoundStatus(StrEnum):
    open = "open"  # scorecards may be filed and changed
    closed = "closed"  # scored and frozen: every change is a 409


class Round(ScoringTable, table=True):
    """One 测评轮次 over a scope region's units of one level, scored by one rubric version."""

    __tablename__ = "rounds"
    __table_args__ = (
        # A month's 上旬 (or 下旬) inspection of a scope and level exists once: `slot` is set for
        # inspection rounds only (NULLs never collide, so other kinds may repeat).
        UniqueConstraint("scope_code", "slot"),
        Index("ix_rounds_scope_path_period", "scope_path", "period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(60), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    period: str = Field(sa_column=Column(String(8), nullable=False, index=True))
    window: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    slot: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    scope_code: str = Field(sa_column=Column(String(32), nullable=False))
    scope_name: str = Field(sa_column=Column(String(100), nullable=False))
    scope_path: str = Field(sa_column=Column(String(400), nullable=False))
    unit_level: str = Field(sa_column=Column(String(8), nullable=False))
    rubric_id: int = Field(sa_column=Column(Integer, ForeignKey("rubrics.id"), nullable=False, index=True))
    status: str = Field(default=RoundStatus.open.value, sa_column=Column(String(8), nullable=False))
    starts_on: date = Field(sa_column=Column(Date, nullable=False))
    ends_on: date = Field(sa_column=Column(Date, nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    closed_by: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    created_by: str = Field(sa_column=Column(String(128), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class RoundUnit(ScoringTable, table=True):
    """The region tree as the issues service gave it when the round was created: the scope region, and
    every town, 管区 and village below it down to the round's unit level (names and places frozen)."""

    __tablename__ = "round_units"
    __table_args__ = (
        UniqueConstraint("round_id", "code"),
        Index("ix_round_units_round_id_level_path", "round_id", "level", "path"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(
        sa_column=Column(Integer, ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False)
    )
    code: str = Field(sa_column=Column(String(32), nullable=False))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    parent_code: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    path: str = Field(sa_column=Column(String(400), nullable=False))
    level: str = Field(sa_column=Column(String(16), nullable=False))


class Scorecard(ScoringTable, table=True):
    """An inspector's scorecard (评分表) of one unit in one round, as it stands now (`revision` counts the
    changes; every one is kept in `scorecard_revisions`)."""

    __tablename__ = "scorecards"
    __table_args__ = (UniqueConstraint("round_id", "unit_code"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(
        sa_column=Column(Integer, ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False)
    )
    unit_code: str = Field(sa_column=Column(String(32), nullable=False))
    unit_path: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    # [{"indicator", "points" (deducted, text), "score" (given, text or null), "note"}, …]
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    photo_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    revision: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    filed_by: str = Field(sa_column=Column(String(128), nullable=False))
    filed_by_name: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ScorecardRevision(ScoringTable, table=True):
    """One state of a scorecard, as filed or changed: the history nobody rewrites."""

    __tablename__ = "scorecard_revisions"
    __table_args__ = (UniqueConstraint("scorecard_id", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    scorecard_id: int = Field(
        sa_column=Column(Integer, ForeignKey("scorecards.id", ondelete="CASCADE"), nullable=False)
    )
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    photo_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    author: str = Field(sa_column=Column(String(128), nullable=False))
    author_name: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class RoundResult(ScoringTable, table=True):
    """A unit's score in a closed round and everything behind it (`breakdown`: per indicator, the item
    deductions and every automatic deduction with the issue code behind it). Written once, at closing."""

    __tablename__ = "round_results"
    __table_args__ = (UniqueConstraint("round_id", "unit_code"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(
        sa_column=Column(Integer, ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False)
    )
    unit_code: str = Field(sa_column=Column(String(32), nullable=False))
    unit_path: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    score: Decimal = Field(sa_column=Column(Numeric(8, 2), nullable=False))
    max_score: Decimal = Field(sa_column=Column(Numeric(8, 2), nullable=False))
    breakdown: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
