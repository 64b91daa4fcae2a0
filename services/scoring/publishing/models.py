"""Published periods and everything a publication freezes: period scores, rankings, red/black lists,
escalations (with their acknowledgement), the list and escalation rule sets as editable data, and the
bulletins (通报) as frozen documents.

Nothing here is changed after it is written, except an escalation's acknowledgement: a published period is
its rows, and a republication finds them and answers them again.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from services.kit.db import UTCDateTime, utcnow
from services.scoring.db import ScoringTable


def _prefix(column: str) -> dict[str, Any]:
    """PostgreSQL uses a btree for LIKE 'prefix%' only with pattern ops."""
    return {"postgresql_ops": {column: "varchar_pattern_ops"}}


class Points(TypeDecorator[Decimal]):
    """Points (two places at most) kept as their exact decimal text: SQLite has no decimal type, and a
    float would turn 86.15 into 86.1499…"""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else f"{value:f}"

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def _code(nullable: bool = False) -> Any:
    return Column(String(32), nullable=nullable)


class RuleSetVersion(ScoringTable, table=True):
    """A version of a region's list and escalation rules (红黑榜, 约谈, 组织处理 …); the newest version of the
    nearest region at or above a publication's scope applies, the seeds' presets where none is stored."""

    __tablename__ = "list_rule_sets"
    __table_args__ = (UniqueConstraint("scope_code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    scope_code: str = Field(sa_column=_code())
    scope_path: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", sa_column=Column(String(200), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(sa_column=Column(String(128), nullable=False))


class Publication(ScoringTable, table=True):
    """A published period of a scope region (发布): frozen once written, one per period and scope."""

    __tablename__ = "published_periods"
    __table_args__ = (
        UniqueConstraint("scope_code", "period"),
        Index("ix_published_periods_scope_path", "scope_path", **_prefix("scope_path")),
    )

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(sa_column=Column(String(8), nullable=False))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    scope_code: str = Field(sa_column=_code())
    scope_path: str = Field(sa_column=Column(String(400), nullable=False))
    scope_name: str = Field(sa_column=Column(String(100), nullable=False))
    rubric_id: int = Field(sa_column=Column(Integer, nullable=False))
    rubric: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # code, name, version, weights
    rule_set_version: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # the rule set as applied
    rounds: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    figures: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # what issues said, and when
    published_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    published_by: str = Field(sa_column=Column(String(128), nullable=False))


def _publication() -> Any:
    return Column(Integer, ForeignKey("published_periods.id", ondelete="CASCADE"), nullable=False, index=True)


class PeriodScoreRow(ScoringTable, table=True):
    """A unit's period score (综合得分) in a publication, with its components and rounds behind it."""

    __tablename__ = "period_scores"
    __table_args__ = (
        UniqueConstraint("publication_id", "unit_code"),
        Index("ix_period_scores_unit", "unit_code", "period"),
        Index("ix_period_scores_path", "path", **_prefix("path")),
    )

    id: int | None = Field(default=None, primary_key=True)
    publication_id: int = Field(sa_column=_publication())
    period: str = Field(sa_column=Column(String(8), nullable=False))
    unit_code: str = Field(sa_column=_code())
    unit_name: str = Field(sa_column=Column(String(100), nullable=False))
    level: str = Field(sa_column=Column(String(8), nullable=False))
    parent_code: str | None = Field(default=None, sa_column=_code(nullable=True))
    town_code: str | None = Field(default=None, sa_column=_code(nullable=True))
    path: str = Field(sa_column=Column(String(400), nullable=False))
    score: Decimal | None = Field(default=None, sa_column=Column(Points(), nullable=True))
    max_score: Decimal = Field(sa_column=Column(Points(), nullable=False))
    unscored_reason: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    components: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    rounds: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))  # round scores, breakdowns
    rectification: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    satisfaction: Decimal | None = Field(default=None, sa_column=Column(Points(), nullable=True))


class RankingEntry(ScoringTable, table=True):
    """A unit's place among the units of its level within one parent region (排名), ties ranked alike."""

    __tablename__ = "ranking_entries"
    __table_args__ = (
        UniqueConstraint("publication_id", "parent_code", "level", "unit_code"),
        Index("ix_ranking_entries_group", "period", "parent_code", "level", "rank"),
        Index("ix_ranking_entries_path", "path", **_prefix("path")),
        Index("ix_ranking_entries_unit", "unit_code", "period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    publication_id: int = Field(sa_column=_publication())
    period: str = Field(sa_column=Column(String(8), nullable=False))
    parent_code: str = Field(sa_column=_code())
    parent_name: str = Field(sa_column=Column(String(100), nullable=False))
    level: str = Field(sa_column=Column(String(8), nullable=False))
    unit_code: str = Field(sa_column=_code())
    unit_name: str = Field(sa_column=Column(String(100), nullable=False))
    path: str = Field(sa_column=Column(String(400), nullable=False))
    score: Decimal = Field(sa_column=Column(Points(), nullable=False))
    rank: int = Field(sa_column=Column(Integer, nullable=False))
    size: int = Field(sa_column=Column(Integer, nullable=False))
    previous_rank: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    change: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # The ranking the lists and escalations are drawn from (the scope's own); a town's ranking of its
    # villages is kept for reading.
    for_lists: bool = Field(sa_column=Column(Boolean, nullable=False))


class ListEntryRow(ScoringTable, table=True):
    """A unit on a list of a published period (红榜, 黑榜, 通报表扬, 通报批评, 末位管理)."""

    __tablename__ = "list_entries"
    __table_args__ = (
        UniqueConstraint("publication_id", "list_code", "parent_code", "unit_code"),
        Index("ix_list_entries_period", "period", "list_code"),
        Index("ix_list_entries_path", "path", **_prefix("path")),
    )

    id: int | None = Field(default=None, primary_key=True)
    publication_id: int = Field(sa_column=_publication())
    period: str = Field(sa_column=Column(String(8), nullable=False))
    list_code: str = Field(sa_column=Column(String(48), nullable=False))
    list_name: str = Field(sa_column=Column(String(50), nullable=False))
    polarity: str = Field(sa_column=Column(String(8), nullable=False))
    parent_code: str = Field(sa_column=_code())
    level: str = Field(sa_column=Column(String(8), nullable=False))
    unit_code: str = Field(sa_column=_code())
    unit_name: str = Field(sa_column=Column(String(100), nullable=False))
    path: str = Field(sa_column=Column(String(400), nullable=False))
    rank: int = Field(sa_column=Column(Integer, nullable=False))
    size: int = Field(sa_column=Column(Integer, nullable=False))
    score: Decimal = Field(sa_column=Column(Points(), nullable=False))
    reason: str = Field(sa_column=Column(String(300), nullable=False))


class EscalationRow(ScoringTable, table=True):
    """One escalation rule firing for one unit in one published period (约谈, 书面检查, 组织处理 …), with
    its reason and figures; the office acknowledges it once it has acted."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("publication_id", "rule_code", "unit_code"),
        Index("ix_escalations_period", "period", "rule_code"),
        Index("ix_escalations_path", "path", **_prefix("path")),
    )

    id: int | None = Field(default=None, primary_key=True)
    publication_id: int = Field(sa_column=_publication())
    period: str = Field(sa_column=Column(String(8), nullable=False))
    rule_code: str = Field(sa_column=Column(String(48), nullable=False))
    rule_name: str = Field(sa_column=Column(String(50), nullable=False))
    level: str = Field(sa_column=Column(String(8), nullable=False))
    unit_code: str = Field(sa_column=_code())
    unit_name: str = Field(sa_column=Column(String(100), nullable=False))
    parent_code: str | None = Field(default=None, sa_column=_code(nullable=True))
    path: str = Field(sa_column=Column(String(400), nullable=False))
    streak: int = Field(sa_column=Column(Integer, nullable=False))
    measures: list[str] = Field(sa_column=Column(JSON, nullable=False))
    addressees: list[str] = Field(sa_column=Column(JSON, nullable=False))
    reason: str = Field(sa_column=Column(String(300), nullable=False))
    figures: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    acknowledged: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    acknowledged_by: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    acknowledgement_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Bulletin(ScoringTable, table=True):
    """A 通报 as issued: its whole content frozen as data (a week's inspection results and rectification
    rates, or a published period's ranking, lists and escalations), so it never changes afterwards."""

    __tablename__ = "bulletins"
    __table_args__ = (
        UniqueConstraint("scope_code", "key"),
        Index("ix_bulletins_scope_path", "scope_path", **_prefix("scope_path")),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(8), nullable=False))  # weekly | period
    key: str = Field(sa_column=Column(String(24), nullable=False))  # week:2026-11-30, period:2026-11
    title: str = Field(sa_column=Column(String(100), nullable=False))
    scope_code: str = Field(sa_column=_code())
    scope_path: str = Field(sa_column=Column(String(400), nullable=False))
    scope_name: str = Field(sa_column=Column(String(100), nullable=False))
    period: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    week_start: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    publication_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("published_periods.id", ondelete="RESTRICT"), nullable=True),
    )
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    issued_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    issued_by: str = Field(sa_column=Column(String(128), nullable=False))
