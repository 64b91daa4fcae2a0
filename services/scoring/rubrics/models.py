"""Rubric versions (考评办法) as stored: the whole rubric is one JSON body, a version a row.

A rubric family is its `code`; each change makes a new `version` of it. A version some round has used is
`frozen_at` and never changes again (rounds keep pointing at the version they were scored by).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Integer, String, UniqueConstraint
from sqlmodel import Field

from services.kit.db import UTCDateTime, utcnow
from services.scoring.db import ScoringTable
from services.scoring.rubrics.rules import (
    Component,
    ComponentWeight,
    DeductionRule,
    Indicator,
    MissingComponents,
    Rubric,
    Severity,
    TownScore,
)

__all__ = ["RubricVersion", "rubric_body", "rubric_of"]


class RubricVersion(ScoringTable, table=True):
    """One version of a rubric family; `body` holds indicators, deductions, weights and the options."""

    __tablename__ = "rubrics"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    name: str = Field(sa_column=Column(String(50), nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    frozen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_by: str = Field(default="", sa_column=Column(String(128), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _points(value: Any) -> Decimal:
    return Decimal(str(value))


def rubric_body(rubric: Rubric) -> dict[str, Any]:
    """A rubric as the JSON body a row stores (points as text, so that no float ever rounds them)."""
    return {
        "indicators": [
            {
                "code": i.code,
                "name": i.name,
                "max_points": str(i.max_points),
                "group": i.group,
                "auto_cap": None if i.auto_cap is None else str(i.auto_cap),
            }
            for i in rubric.indicators
        ],
        "deductions": [
            {
                "category": d.category,
                "severity": d.severity.value,
                "indicator": d.indicator,
                "points": str(d.points),
            }
            for d in rubric.deductions
        ],
        "weights": [
            {"component": w.component.value, "permille": w.permille, "required": w.required}
            for w in rubric.weights
        ],
        "missing": rubric.missing.value,
        "town_score": rubric.town_score.value,
    }


def rubric_from_body(code: str, name: str, version: int, body: dict[str, Any]) -> Rubric:
    """The pure rubric a stored body describes."""
    return Rubric(
        code=code,
        name=name,
        version=version,
        indicators=tuple(
            Indicator(
                i["code"],
                i["name"],
                _points(i["max_points"]),
                i["group"],
                None if i.get("auto_cap") is None else _points(i["auto_cap"]),
            )
            for i in body["indicators"]
        ),
        deductions=tuple(
            DeductionRule(d["category"], Severity(d["severity"]), d["indicator"], _points(d["points"]))
            for d in body["deductions"]
        ),
        weights=tuple(
            ComponentWeight(Component(w["component"]), int(w["permille"]), bool(w.get("required", False)))
            for w in body["weights"]
        ),
        missing=MissingComponents(body.get("missing", MissingComponents.reweight.value)),
        town_score=TownScore(body.get("town_score", TownScore.own_rounds.value)),
    )


def rubric_of(row: RubricVersion) -> Rubric:
    """The pure rubric (services.scoring.rubrics.rules.Rubric) a stored version holds."""
    return rubric_from_body(row.code, row.name, row.version, row.body)
