"""Published periods, rankings, lists, escalations, rule sets and bulletins as the API answers them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.kit.pagination import Page, envelope_example
from services.kit.text import is_plain_text
from services.scoring.publishing.rulesets import PRESET_BODY
from services.scoring.schemas import Day

_SCOPE: dict[str, Any] = {"code": "370282", "name": "即墨区"}


class RegionRef(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"code": "370282103201", "name": "前庄村"}})

    code: str
    name: str


class PublishRequest(BaseModel):
    """What to publish: the rounds of `scope` (default: the caller's own region)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"scope": "370282"}})

    scope: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$")


class PublicationPublic(BaseModel):
    """A published period: frozen; publishing it again answers this again."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 3,
                "period": "2026-11",
                "kind": "month",
                "label": "2026年11月",
                "scope": _SCOPE,
                "published_at": "2026-12-01T01:30:00Z",
                "published_by": "user:1",
                "rubric": {
                    "id": 1,
                    "code": "default",
                    "name": "农村人居环境整治考评办法（百分制）",
                    "version": 1,
                    "town_score": "own_rounds",
                    "weights": [{"component": "inspection", "permille": 600}],
                },
                "rule_set_version": None,
                "rounds": [
                    {
                        "id": 7,
                        "name": "2026年11月上旬督查",
                        "kind": "inspection",
                        "period": "2026-11",
                        "window": "first",
                        "unit_level": "village",
                        "starts_on": "2026-11-01",
                        "ends_on": "2026-11-15",
                    }
                ],
                "summary": {
                    "scored": 412,
                    "unscored": 3,
                    "rankings": 21,
                    "lists": {"black-monthly": 3, "red-monthly": 3},
                    "escalations": {"black-two-months": 1},
                    "issues_units": 415,
                    "issues_read_at": "2026-12-01T01:30:00+00:00",
                },
                "bulletin_id": 12,
            }
        }
    )

    id: int
    period: str
    kind: str = Field(description="`month`, `quarter` or `year`.")
    label: str
    scope: RegionRef
    published_at: datetime
    published_by: str
    rubric: dict[str, Any] = Field(description="The rubric version the scores were combined by.")
    rule_set_version: int | None = Field(
        description="The list rules' version applied; null: the seeds' presets."
    )
    rounds: list[dict[str, Any]] = Field(description="The closed rounds the period combined.")
    summary: dict[str, Any] = Field(
        description="Units scored and unscored, rankings, entries per list, escalations per rule, and when "
        "the issues service's figures were read; for a reader below the scope, counted over its own subtree."
    )
    bulletin_id: int | None = Field(description="The period's bulletin (通报), issued with it.")


class RankingEntryPublic(BaseModel):
    """A unit's place within its parent region in a published period; ties share a rank (1, 2, 2, 4)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "period": "2026-11",
                "parent": _SCOPE,
                "level": "village",
                "unit": {"code": "370282103201", "name": "前庄村"},
                "score": 91.35,
                "rank": 2,
                "size": 415,
                "previous_rank": 5,
                "change": 3,
                "for_lists": True,
            }
        }
    )

    period: str
    parent: RegionRef
    level: str
    unit: RegionRef
    score: float
    rank: int
    size: int = Field(description="How many units the ranking holds.")
    previous_rank: int | None
    change: int | None = Field(
        description="previous rank − rank: +3 is three places up; null: not ranked before."
    )
    for_lists: bool = Field(
        description="The ranking the lists and escalations are drawn from (the scope's own)."
    )


class ListEntryPublic(BaseModel):
    """A unit on a list (红榜, 黑榜, 通报表扬, 通报批评, 末位管理) of a published period."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "period": "2026-11",
                "list_code": "black-monthly",
                "list_name": "月度黑榜",
                "polarity": "bad",
                "parent_code": "370282",
                "level": "village",
                "unit": {"code": "370282104201", "name": "七级村"},
                "rank": 413,
                "size": 415,
                "score": 61.5,
                "reason": "2026年11月排名后3名（第413名，共415个，61.50分）",
            }
        }
    )

    period: str
    list_code: str
    list_name: str
    polarity: str = Field(description="`good` (红榜, 表扬) or `bad` (黑榜, 批评, 末位管理).")
    parent_code: str
    level: str
    unit: RegionRef
    rank: int
    size: int
    score: float
    reason: str


class EscalationPublic(BaseModel):
    """One rule firing for one unit in one published period, and whether the office has acted on it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 5,
                "period": "2026-11",
                "rule_code": "black-two-months",
                "rule_name": "连续两个月黑榜约谈",
                "level": "village",
                "unit": {"code": "370282104201", "name": "七级村"},
                "parent_code": "370282",
                "streak": 2,
                "measures": ["interview", "written_self_criticism"],
                "measure_names": ["约谈", "书面检查"],
                "addressees": ["村(居)主要负责人", "管区主要负责人"],
                "reason": "连续2个月列入月度黑榜（第413名，共415个，61.50分）",
                "figures": {"rank": 413, "size": 415, "place_from_bottom": 3, "score": "61.50", "streak": 2},
                "created_at": "2026-12-01T01:30:00Z",
                "acknowledged": False,
                "acknowledged_at": None,
                "acknowledged_by": None,
                "acknowledgement_note": None,
            }
        }
    )

    id: int
    period: str
    rule_code: str
    rule_name: str
    level: str
    unit: RegionRef
    parent_code: str | None
    streak: int = Field(description="Consecutive periods the rule's condition has held, this one the last.")
    measures: list[str]
    measure_names: list[str]
    addressees: list[str] = Field(description="Who is interviewed or answers.")
    reason: str
    figures: dict[str, Any]
    created_at: datetime
    acknowledged: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement_note: str | None


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"note": "12月3日已约谈村支部书记"}}
    )

    note: str | None = Field(default=None, max_length=500, description="What was done (plain text).")

    @field_validator("note")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        if value is not None and not is_plain_text(value):
            raise ValueError("plain text only (no control or direction characters)")
        return value


class RuleSetPublic(BaseModel):
    """The list and escalation rules that apply to a region: a stored version, or the seeds' presets."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "scope_code": "370282",
                "version": None,
                "preset": True,
                "note": "",
                "created_at": None,
                "created_by": None,
                "rules": PRESET_BODY,
            }
        }
    )

    scope_code: str
    version: int | None = Field(description="null: no rules stored, the seeds' presets apply.")
    preset: bool
    note: str
    created_at: datetime | None
    created_by: str | None
    rules: dict[str, Any] = Field(description="`lists` and `escalations`; see the presets for the shape.")


class RuleSetUpdate(BaseModel):
    """A new version of the caller's region's rules (the whole set; checked before it is stored)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"rules": PRESET_BODY, "note": "红黑榜各5名"}}
    )

    rules: dict[str, Any]
    note: str = Field(default="", max_length=200)


class PeriodScorePublic(BaseModel):
    """A unit's score in one published period, its components and the rounds behind it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "period": "2026-11",
                "score": 91.35,
                "max_score": 100.0,
                "unscored_reason": None,
                "components": [{"component": "inspection", "permille": 600, "value": "92.25", "rounds": 2}],
                "rounds": [
                    {
                        "round_id": 7,
                        "kind": "inspection",
                        "name": "2026年11月上旬督查",
                        "window": "first",
                        "score": "93.00",
                        "max_score": "100",
                    }
                ],
                "rectification": {"found": 12, "fixed": 11, "overdue": 1, "rate": "0.9167"},
                "satisfaction": 4.5,
                "places": [
                    {"parent_code": "370282", "level": "village", "rank": 2, "size": 415, "change": 3}
                ],
            }
        }
    )

    period: str
    score: float | None
    max_score: float
    unscored_reason: str | None
    components: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    rectification: dict[str, Any] | None
    satisfaction: float | None
    places: list[dict[str, Any]]


class UnitHistoryPublic(BaseModel):
    """A unit's published periods (newest first), its current streaks per list, and the breakdown of every
    round behind them (each deduction with the issue code behind it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "unit": {"code": "370282103201", "name": "前庄村"},
                "level": "village",
                "periods": [PeriodScorePublic.model_config["json_schema_extra"]["example"]],  # type: ignore[index]
                "streaks": {"black-monthly": 0, "red-monthly": 2},
                "lists": [],
                "escalations": [],
                "breakdowns": {"7": {"indicators": []}},
            }
        }
    )

    unit: RegionRef
    level: str
    periods: list[PeriodScorePublic]
    streaks: dict[str, int] = Field(
        description="On each list it has been on: consecutive periods up to the newest."
    )
    lists: list[ListEntryPublic]
    escalations: list[EscalationPublic]
    breakdowns: dict[str, dict[str, Any]] = Field(description="By round id: the round result's breakdown.")


class WeeklyBulletinRequest(BaseModel):
    """Issue the weekly bulletin of the week starting `week_start` (a Monday; the week must be over)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"week_start": "2026-11-23"}})

    week_start: Day
    scope: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$")


class BulletinSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 12,
                "kind": "period",
                "title": "即墨区2026年11月人居环境整治考评通报",
                "scope": _SCOPE,
                "period": "2026-11",
                "week_start": None,
                "issued_at": "2026-12-01T01:30:00Z",
                "issued_by": "user:1",
            }
        }
    )

    id: int
    kind: str = Field(description="`weekly` (每周一通报) or `period` (a published period's).")
    title: str
    scope: RegionRef
    period: str | None
    week_start: date | None
    issued_at: datetime
    issued_by: str


class BulletinPublic(BulletinSummary):
    """A bulletin as issued (frozen); a reader below its scope sees its own subtree's rows only."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **BulletinSummary.model_config["json_schema_extra"]["example"],  # type: ignore[index,dict-item]
                "partial": False,
                "body": {
                    "kind": "period",
                    "period": "2026-11",
                    "rankings": [],
                    "lists": [],
                    "escalations": [],
                },
            }
        }
    )

    partial: bool = Field(description="True when the rows were cut to the reader's subtree.")
    body: dict[str, Any]


class PublicationPage(Page[PublicationPublic]):
    model_config = ConfigDict(json_schema_extra=envelope_example(next_cursor=None, limit=50))


class RankingPage(Page[RankingEntryPublic]):
    model_config = ConfigDict(json_schema_extra=envelope_example(next_cursor=None, limit=50))


class ListPage(Page[ListEntryPublic]):
    model_config = ConfigDict(json_schema_extra=envelope_example(next_cursor=None, limit=50))


class EscalationPage(Page[EscalationPublic]):
    model_config = ConfigDict(json_schema_extra=envelope_example(next_cursor=None, limit=50))


class BulletinPage(Page[BulletinSummary]):
    model_config = ConfigDict(json_schema_extra=envelope_example(next_cursor=None, limit=50))
