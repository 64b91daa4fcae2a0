"""Round, snapshot, scorecard and result shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.kit.fields import not_nullable
from services.kit.media import PhotoId
from services.scoring.levels import UnitLevel
from services.scoring.periods import PERIOD_PATTERN, HalfMonth
from services.scoring.rounds.models import RoundKind, RoundStatus
from services.scoring.rubrics.rules import Severity
from services.scoring.schemas import Day, Note, Points, Score
from services.scoring.scores.rules import DeductionSource

REGION_CODE = r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$"
_PHOTO = "9b2f6c1e3d4a4e5f8a9b0c1d2e3f4a5b"

_ROUND: dict[str, Any] = {
    "id": 12,
    "name": "2026年11月上旬督查",
    "kind": "inspection",
    "period": "2026-11",
    "window": "first",
    "scope": {"code": "370282", "name": "即墨区", "path": "/37/3702/370282/"},
    "unit_level": "village",
    "rubric_id": 1,
    "status": "open",
    "starts_on": "2026-11-01",
    "ends_on": "2026-11-15",
    "units": 412,
    "closed_at": None,
    "closed_by": None,
    "created_by": "user:2",
    "created_at": "2026-11-01T00:30:00Z",
    "updated_at": "2026-11-01T00:30:00Z",
}


class RoundCreate(BaseModel):
    """One round. `window` (`first` 上旬 1st–15th, `second` 下旬 16th–end) only for an inspection round of a
    month. `starts_on`/`ends_on` (inclusive) default to the window or the whole period and must lie in it:
    the issues found between them are deducted when the round is closed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "kind": "covert",
                "period": "2026-Q4",
                "scope": "370282",
                "unit_level": "village",
                "rubric_id": 1,
                "starts_on": "2026-11-20",
                "ends_on": "2026-11-30",
            }
        },
    )

    kind: RoundKind
    period: str = Field(pattern=PERIOD_PATTERN, description="`2026-11`, `2026-Q4` or `2026`.")
    window: HalfMonth | None = None
    scope: str = Field(
        pattern=REGION_CODE, description="The region whose units are scored (a county, a town)."
    )
    unit_level: UnitLevel = Field(description="What is scored: every `village` or every `town` of the scope.")
    rubric_id: int = Field(ge=1, le=2**31 - 1)
    name: str | None = Field(default=None, min_length=1, max_length=60, pattern=r"^[^\x00-\x1f]*$")
    starts_on: Day | None = None
    ends_on: Day | None = None


class MonthlyInspectionsCreate(BaseModel):
    """A month's two inspection rounds (上旬 and 下旬) of one scope, in one call."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"period": "2026-11", "scope": "370282", "unit_level": "village", "rubric_id": 1}
        },
    )

    period: str = Field(pattern=r"^2\d{3}-(0[1-9]|1[0-2])$", description="A month: `2026-11`.")
    scope: str = Field(pattern=REGION_CODE)
    unit_level: UnitLevel
    rubric_id: int = Field(ge=1, le=2**31 - 1)


class RoundUpdate(BaseModel):
    """Rename an open round or move its dates (within its period); a closed round answers 409."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"ends_on": "2026-11-14"}, "minProperties": 1}
    )

    name: str | None = Field(
        default=None, min_length=1, max_length=60, pattern=r"^[^\x00-\x1f]*$", json_schema_extra=not_nullable
    )
    starts_on: Day | None = Field(default=None, json_schema_extra=not_nullable)
    ends_on: Day | None = Field(default=None, json_schema_extra=not_nullable)

    @model_validator(mode="after")
    def _something(self) -> RoundUpdate:
        if not self.model_fields_set:
            raise ValueError("change at least one of name, starts_on, ends_on")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may be left out, not set to null")
        return self


class ScopePublic(BaseModel):
    code: str
    name: str
    path: str


class RoundPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": _ROUND})

    id: int
    name: str
    kind: RoundKind
    period: str
    window: HalfMonth | None
    scope: ScopePublic
    unit_level: UnitLevel
    rubric_id: int
    status: RoundStatus
    starts_on: Day
    ends_on: Day
    units: int = Field(description="How many units of `unit_level` the round's snapshot holds.")
    closed_at: datetime | None
    closed_by: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class RoundPair(BaseModel):
    """The month's two inspection rounds, 上旬 first."""

    model_config = ConfigDict(json_schema_extra={"example": {"items": [_ROUND]}})

    items: list[RoundPublic]


class RoundUnitPublic(BaseModel):
    """A region as the round's snapshot holds it (as it was when the round was created)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "code": "370282103201",
                "name": "前庄村",
                "level": "village",
                "parent_code": "370282103-GQ01",
                "path": "/37/3702/370282/370282103/370282103-GQ01/370282103201/",
            }
        }
    )

    code: str
    name: str
    level: str
    parent_code: str | None
    path: str


class ScorecardItem(BaseModel):
    """One line of a scorecard against an indicator: a `deduction` (扣分) or the `score` given (得分),
    exactly one of them (left out, never null); a score means the indicator's points less it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"indicator": "liu-luan", "deduction": 2, "note": "村东头柴草乱堆"},
            "oneOf": [{"required": ["deduction"]}, {"required": ["score"]}],
        },
    )

    indicator: str = Field(max_length=32, examples=["liu-luan"])
    deduction: Points | None = Field(default=None, json_schema_extra=not_nullable)
    score: Points | None = Field(default=None, json_schema_extra=not_nullable)
    note: Note = ""

    @model_validator(mode="after")
    def _one_of(self) -> ScorecardItem:
        given = [name for name in ("deduction", "score") if name in self.model_fields_set]
        if len(given) != 1 or getattr(self, given[0]) is None:
            raise ValueError("give either a deduction or a score (a number, not null)")
        return self


class ScorecardItemPublic(BaseModel):
    """A scorecard line as filed: the deduction or the score given (the other null)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"indicator": "liu-luan", "deduction": 2, "score": None, "note": "村东头柴草乱堆"}
        }
    )

    indicator: str
    deduction: Score | None
    score: Score | None
    note: str


class ScorecardBody(BaseModel):
    """What an inspector writes: item deductions or scores, notes, photo ids (uploaded with purpose
    `scorecard`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "items": [{"indicator": "liu-luan", "deduction": 2, "note": "村东头柴草乱堆"}],
                "notes": "保洁员在岗，台账齐全",
                "photo_ids": [_PHOTO],
            }
        },
    )

    items: list[ScorecardItem] = Field(default_factory=list, max_length=200)
    notes: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")
    photo_ids: list[PhotoId] = Field(default_factory=list, max_length=20)


class ScorecardCreate(ScorecardBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "unit_code": "370282103201",
                "items": [{"indicator": "liu-luan", "deduction": 2, "note": "村东头柴草乱堆"}],
                "notes": "保洁员在岗，台账齐全",
                "photo_ids": [_PHOTO],
            }
        },
    )

    unit_code: str = Field(pattern=REGION_CODE, description="A unit of the round's snapshot.")


_CARD: dict[str, Any] = {
    "round_id": 12,
    "unit_code": "370282103201",
    "unit_name": "前庄村",
    "items": [{"indicator": "liu-luan", "deduction": 2, "score": None, "note": "村东头柴草乱堆"}],
    "notes": "保洁员在岗，台账齐全",
    "photo_ids": [_PHOTO],
    "revision": 2,
    "filed_by": "user:2",
    "filed_by_name": "区测评组 检查员",
    "created_at": "2026-11-05T02:00:00Z",
    "updated_at": "2026-11-05T03:10:00Z",
}


class ScorecardPublic(BaseModel):
    """A scorecard as it stands; `revision` counts its versions (the history lists each)."""

    model_config = ConfigDict(json_schema_extra={"example": _CARD})

    round_id: int
    unit_code: str
    unit_name: str
    items: list[ScorecardItemPublic]
    notes: str
    photo_ids: list[str]
    revision: int
    filed_by: str = Field(description="Who filed it first.")
    filed_by_name: str | None
    created_at: datetime
    updated_at: datetime


class ScorecardRevisionPublic(BaseModel):
    """One version of a scorecard, as it was filed or changed, and by whom."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "revision": 1,
                "items": _CARD["items"],
                "notes": "",
                "photo_ids": [],
                "author": "user:2",
                "author_name": "区测评组 检查员",
                "created_at": "2026-11-05T02:00:00Z",
            }
        }
    )

    revision: int
    items: list[ScorecardItemPublic]
    notes: str
    photo_ids: list[str]
    author: str
    author_name: str | None
    created_at: datetime


class DeductionLine(BaseModel):
    """One deduction: `points` asked for (by the inspector or the rubric's rule), `counted` after the caps;
    an automatic one names the issue behind it."""

    source: DeductionSource
    points: Score
    counted: Score
    issue_code: str | None = None
    category: str | None = None
    severity: Severity | None = None
    note: str = ""


class IndicatorLine(BaseModel):
    code: str
    name: str
    max_points: Score
    deducted: Score
    score: Score
    deductions: list[DeductionLine]


class Breakdown(BaseModel):
    """Everything behind a unit's round score."""

    scorecard_filed: bool = Field(description="Whether an inspector filed a scorecard for the unit.")
    issues_found: int = Field(description="Verified issues found in the unit during the round.")
    unmatched_issues: list[str] = Field(
        description="Issues found for which the rubric has no deduction rule."
    )
    indicators: list[IndicatorLine]


_BREAKDOWN: dict[str, Any] = {
    "scorecard_filed": True,
    "issues_found": 1,
    "unmatched_issues": [],
    "indicators": [
        {
            "code": "liu-luan",
            "name": "六乱整治",
            "max_points": 30,
            "deducted": 3,
            "score": 27,
            "deductions": [
                {"source": "item", "points": 2, "counted": 2, "note": "村东头柴草乱堆"},
                {
                    "source": "automatic",
                    "points": 1,
                    "counted": 1,
                    "issue_code": "370282-2026-001104",
                    "category": "luan-dui-fang",
                    "severity": "normal",
                    "note": "",
                },
            ],
        }
    ],
}


class RoundResultPublic(BaseModel):
    """A unit's score in a closed round (base minus deductions, never below 0) and its breakdown."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "round_id": 12,
                "unit_code": "370282103201",
                "unit_name": "前庄村",
                "unit_path": "/37/3702/370282/370282103/370282103-GQ01/370282103201/",
                "score": 97,
                "max_score": 100,
                "breakdown": _BREAKDOWN,
            }
        }
    )

    round_id: int
    unit_code: str
    unit_name: str
    unit_path: str
    score: Score
    max_score: Score
    breakdown: Breakdown
