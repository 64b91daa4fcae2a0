"""Rubric request and response shapes: the whole rubric as data, points as numbers, weights in percent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from services.scoring.rubrics.rules import (
    CATEGORY_CODE_PATTERN,
    CODE_PATTERN,
    PERMILLE,
    Component,
    ComponentWeight,
    DeductionRule,
    Indicator,
    MissingComponents,
    Rubric,
    Severity,
    TownScore,
)
from services.scoring.schemas import Number, Points

# A component's share in percent, to one decimal (60, 12.5): the rules keep it as per-mille.
Percent = Annotated[
    Decimal,
    Field(gt=0, le=100, max_digits=4, decimal_places=1, examples=[60]),
    Number,
    WithJsonSchema(
        {"type": "number", "exclusiveMinimum": 0, "maximum": 100, "multipleOf": 0.1, "examples": [60]}
    ),
    PlainSerializer(float, return_type=float, when_used="json"),
]

_EXAMPLE: dict[str, Any] = {
    "code": "default",
    "name": "农村人居环境整治考评办法（百分制）",
    "indicators": [
        {"code": "liu-luan", "name": "六乱整治", "max_points": 30, "group": "村容村貌", "auto_cap": 20},
        {"code": "chang-xiao", "name": "长效管理", "max_points": 70, "group": "长效机制", "auto_cap": 0},
    ],
    "deductions": [
        {"category": "luan-dui-fang", "severity": "normal", "indicator": "liu-luan", "points": 1},
        {"category": "luan-da-jian", "severity": "serious", "indicator": "liu-luan", "points": 3},
    ],
    "weights": [
        {"component": "inspection", "percent": 60, "required": True},
        {"component": "covert", "percent": 20, "required": False},
        {"component": "satisfaction", "percent": 10, "required": False},
        {"component": "rectification", "percent": 10, "required": False},
    ],
    "missing": "reweight",
    "town_score": "own_rounds",
}


class IndicatorBody(BaseModel):
    """One 考评指标: `auto_cap` bounds what automatic deductions take from it (null: all its points)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": _EXAMPLE["indicators"][0]})

    code: str = Field(pattern=CODE_PATTERN, examples=["liu-luan"])
    name: str = Field(min_length=1, max_length=50, examples=["六乱整治"])
    max_points: Points
    group: str = Field(min_length=1, max_length=50, examples=["村容村貌"])
    auto_cap: Points | None = None


class DeductionBody(BaseModel):
    """Each verified issue of this category and severity found in a unit during a round deducts `points`
    from `indicator`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": _EXAMPLE["deductions"][0]})

    category: str = Field(pattern=CATEGORY_CODE_PATTERN, examples=["luan-dui-fang"])
    severity: Severity
    indicator: str = Field(max_length=32, examples=["liu-luan"])
    points: Points


class WeightBody(BaseModel):
    """A component's share of the period score; `required`: a unit without it is not scored."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": _EXAMPLE["weights"][0]})

    component: Component
    percent: Percent
    required: bool = False


class RubricBody(BaseModel):
    """A rubric (考评办法) as data. Checked as a whole: the weights add up to 100 %, every deduction names
    an indicator and fits within its automatic cap, codes are unique (422 `invalid_rubric` lists every
    problem)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": _EXAMPLE})

    code: str = Field(pattern=CODE_PATTERN, description="The rubric family; a new version keeps it.")
    name: str = Field(min_length=1, max_length=50)
    indicators: list[IndicatorBody] = Field(min_length=1, max_length=100)
    deductions: list[DeductionBody] = Field(default_factory=list, max_length=1000)
    weights: list[WeightBody] = Field(min_length=1, max_length=5)
    missing: MissingComponents = Field(
        default=MissingComponents.reweight,
        description="A component a unit lacks: `reweight` (the rest share its weight) or `zero`.",
    )
    town_score: TownScore = Field(
        default=TownScore.own_rounds,
        description="A town's score: from its `own_rounds`, or the mean of its villages (`villages_mean`).",
    )

    def rubric(self, version: int) -> Rubric:
        return Rubric(
            code=self.code,
            name=self.name,
            version=version,
            indicators=tuple(
                Indicator(i.code, i.name, i.max_points, i.group, i.auto_cap) for i in self.indicators
            ),
            deductions=tuple(
                DeductionRule(d.category, d.severity, d.indicator, d.points) for d in self.deductions
            ),
            weights=tuple(
                ComponentWeight(w.component, int(w.percent * PERMILLE / 100), w.required)
                for w in self.weights
            ),
            missing=self.missing,
            town_score=self.town_score,
        )


class RubricPublic(RubricBody):
    """A stored rubric version. `frozen_at`: a round has used it, it never changes again."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "id": 1,
                "version": 1,
                **_EXAMPLE,
                "total": 100,
                "frozen_at": "2026-11-01T01:00:00Z",
                "created_by": "user:1",
                "created_at": "2026-10-28T08:00:00Z",
            }
        },
    )

    id: int
    version: int
    total: Points = Field(description="The rubric's full marks: the sum of its indicators' points.")
    frozen_at: datetime | None = Field(description="When a round first used it; null while it may change.")
    created_by: str
    created_at: datetime

    @classmethod
    def of(
        cls, rubric: Rubric, *, id: int, frozen_at: datetime | None, created_by: str, created_at: datetime
    ) -> RubricPublic:
        return cls(
            id=id,
            code=rubric.code,
            name=rubric.name,
            version=rubric.version,
            indicators=[
                IndicatorBody(
                    code=i.code, name=i.name, max_points=i.max_points, group=i.group, auto_cap=i.auto_cap
                )
                for i in rubric.indicators
            ],
            deductions=[
                DeductionBody(
                    category=d.category, severity=d.severity, indicator=d.indicator, points=d.points
                )
                for d in rubric.deductions
            ],
            weights=[
                WeightBody(component=w.component, percent=Decimal(w.permille) / 10, required=w.required)
                for w in rubric.weights
            ],
            missing=rubric.missing,
            town_score=rubric.town_score,
            total=rubric.total,
            frozen_at=frozen_at,
            created_by=created_by,
            created_at=created_at,
        )
