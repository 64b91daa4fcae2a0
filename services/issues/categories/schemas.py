"""Category requests and answers: create, update, the public shape, and the extra-field specs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from services.issues.categories.models import FieldType
from services.issues.categories.rules import (
    CHOICE_TYPES,
    CODE_PATTERN,
    FIELD_KEY_PATTERN,
    MAX_CHOICES,
    MAX_DEADLINE_DAYS,
    MAX_FIELDS,
    FieldSpec,
    spec_problems,
)
from services.kit.fields import JSON_INT, not_nullable
from services.kit.text import PLAIN_TEXT

CategoryCode = Annotated[
    str,
    StringConstraints(pattern=CODE_PATTERN),
    Field(
        description="Stable code: letters, digits and `-`, at most 32; unique whatever its case.",
        examples=["luan-dui-fang"],
    ),
]
CategoryName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    PLAIN_TEXT,
    Field(description="Chinese display name, 1 to 50 characters after trimming.", examples=["乱堆乱放"]),
]
CategoryGroup = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20),
    PLAIN_TEXT,
    Field(
        description="The group the category belongs to, e.g. 六乱, 垃圾, 污水, 厕所, 庭院, 道路, 绿化, 广告, 畜禽.",
        examples=["六乱"],
    ),
]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), PLAIN_TEXT]
WorkingDays = Annotated[int, Field(ge=1, le=MAX_DEADLINE_DAYS), JSON_INT]

_DEADLINES_EXAMPLE: JsonDict = {"minor": 3, "normal": 5, "serious": 10}
_TOILET_FIELDS: list[JsonValue] = [
    {
        "key": "toilet_type",
        "label": "厕所类型",
        "type": "choice",
        "required": True,
        "choices": ["水冲式", "三格化粪池", "双瓮漏斗式"],
    },
    {"key": "household", "label": "户主姓名", "type": "string", "required": False, "choices": None},
]


class DeadlineDays(BaseModel):
    """The default deadline (整改时限) in working days, per severity: every severity, 1 to 365 each."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": _DEADLINES_EXAMPLE})

    minor: WorkingDays = Field(description="轻微: working days.")
    normal: WorkingDays = Field(description="一般: working days.")
    serious: WorkingDays = Field(description="严重: working days.")


class CategoryField(BaseModel):
    """One extra field intake validates in an issue's `fields` object."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": _TOILET_FIELDS[0],
            # The rule between `type` and `choices`, for generated clients and schemathesis to read.
            "if": {
                "properties": {"type": {"enum": [t.value for t in sorted(CHOICE_TYPES)]}},
                "required": ["type"],
            },
            "then": {"properties": {"choices": {"type": "array", "minItems": 1}}, "required": ["choices"]},
            "else": {"properties": {"choices": {"type": "null"}}},
        },
    )

    key: Annotated[str, StringConstraints(pattern=FIELD_KEY_PATTERN)] = Field(
        description="The key in an issue's `fields`: lower-case letters, digits and `_`, at most 32.",
        examples=["toilet_type"],
    )
    label: Label = Field(description="What a form shows, 1 to 50 characters.", examples=["厕所类型"])
    type: FieldType = Field(
        description="`string` (at most 500 characters), `number` (a JSON number, not a boolean), `datetime` "
        "(RFC 3339 with an offset), `choice` (one of `choices`) or `multi_choice` (a list of distinct "
        "`choices`)."
    )
    required: StrictBool = Field(default=False, description="Intake refuses an issue without it.")
    choices: list[Label] | None = Field(
        default=None,
        max_length=MAX_CHOICES,
        json_schema_extra={"uniqueItems": True},
        description="Required (1 to 50 distinct labels) for `choice` and `multi_choice`; null otherwise.",
        examples=[["水冲式", "三格化粪池", "双瓮漏斗式"]],
    )

    def spec(self) -> FieldSpec:
        return FieldSpec(
            key=self.key,
            label=self.label,
            type=self.type,
            required=self.required,
            choices=tuple(self.choices) if self.choices is not None else None,
        )

    @model_validator(mode="after")
    def _choices_fit_the_type(self) -> CategoryField:
        problems = spec_problems([self.spec()])
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Each field is checked by its own model; that the keys differ, which JSON Schema cannot say, is the
# service's check (422 `field_key_repeated`).
CategoryFields = Annotated[
    list[CategoryField],
    Field(max_length=MAX_FIELDS),
    Field(
        description="The extra fields intake validates, at most 20, keys unique (else 422 `field_key_repeated`); "
        "`[]` for none."
    ),
]


class CategoryCreate(BaseModel):
    """A new category of the county's taxonomy."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "code": "hu-ce-gai-ce",
                "name": "户厕/改厕",
                "group": "厕所",
                "deadline_days": {"minor": 10, "normal": 15, "serious": 30},
                "fields": _TOILET_FIELDS,
                "active": True,
            }
        },
    )

    code: CategoryCode
    name: CategoryName
    group: CategoryGroup
    deadline_days: DeadlineDays
    fields: CategoryFields = Field(default_factory=list)
    active: StrictBool = Field(default=True, description="`false`: not offered for new issues.")


class CategoryUpdate(BaseModel):
    """Fields to change; a field left out keeps its value, and none may be null.

    `deadline_days` and `fields` are replaced whole. The code never changes: issues refer to it. Issues
    already reported keep their fields and deadlines; the change applies to new ones.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "name": "乱堆乱放（柴草、杂物）",
                "deadline_days": {"minor": 2, "normal": 5, "serious": 7},
            }
        },
    )

    name: CategoryName | None = Field(default=None, json_schema_extra=not_nullable)
    group: CategoryGroup | None = Field(default=None, json_schema_extra=not_nullable)
    deadline_days: DeadlineDays | None = Field(default=None, json_schema_extra=not_nullable)
    fields: CategoryFields | None = Field(default=None, json_schema_extra=not_nullable)
    active: StrictBool | None = Field(
        default=None,
        description="`false` retires the category: still readable, no longer offered for new issues.",
        json_schema_extra=not_nullable,
    )

    @field_validator("name", "group", "deadline_days", "fields", "active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Leaving a field out keeps it; an explicit null would erase a required value.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class CategoryPublic(BaseModel):
    """A category as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "code": "hu-ce-gai-ce",
                "name": "户厕/改厕",
                "group": "厕所",
                "deadline_days": {"minor": 10, "normal": 15, "serious": 30},
                "fields": _TOILET_FIELDS,
                "active": True,
                "created_at": "2026-12-04T08:00:00Z",
                "updated_at": "2026-12-04T08:00:00Z",
            }
        }
    )

    code: str
    name: str
    group: str
    deadline_days: DeadlineDays
    fields: list[CategoryField]
    active: bool = Field(description="`false`: retired, readable but not offered for new issues.")
    created_at: datetime
    updated_at: datetime
