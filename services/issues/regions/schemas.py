"""Region requests and answers: create, update, the public shape, and the CSV import report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from services.issues.regions.models import Level
from services.issues.regions.rules import CODE_PATTERN, MAX_NAME_LENGTH, valid_name
from services.kit.fields import not_nullable
from services.kit.text import plain_text_schema

RegionCode = Annotated[
    str,
    StringConstraints(pattern=CODE_PATTERN),
    Field(
        description="Statistical division code (`370282103201`) or a local code for 管区 and grids "
        "(`370282103-GQ01`): letters, digits and `-`, at most 32.",
        examples=["370282103204"],
    ),
]


def _no_control_characters(name: str) -> str:
    if not valid_name(name):
        raise ValueError("must not contain control or text-direction characters")
    return name


RegionName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_no_control_characters),
    plain_text_schema(MAX_NAME_LENGTH),
    Field(
        description="Display name, 1 to 100 characters after trimming, without control or text-direction "
        "characters.",
        examples=["北庄村"],
    ),
]


class RegionCreate(BaseModel):
    """A new region under a parent the caller can see."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "code": "370282103204",
                "name": "北庄村",
                "level": "village",
                "parent_code": "370282103",
            }
        },
    )

    code: RegionCode
    name: RegionName
    level: Level
    parent_code: RegionCode | None = Field(
        description="The parent region; `null` creates a root, which only a caller over the whole tree may do.",
    )


class RegionUpdate(BaseModel):
    """Rename, change the level, or move a region (with its whole subtree) under another parent.

    A field left out keeps its value. `name` and `level` may not be null; `parent_code: null` makes a root.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"name": "前庄社区", "parent_code": "370282103"}},
    )

    name: RegionName | None = Field(default=None, json_schema_extra=not_nullable)
    level: Level | None = Field(
        default=None,
        description="Must still sit below the parent and above children.",
        json_schema_extra=not_nullable,
    )
    parent_code: RegionCode | None = Field(
        default=None,
        description="Move the region and its subtree under this parent; `null` makes it a root. Leave out "
        "to keep the parent.",
    )

    @field_validator("name", "level", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Leaving a field out keeps it; an explicit null would erase a required value.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class RegionPublic(BaseModel):
    """A region as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 6,
                "code": "370282103201",
                "name": "前庄村",
                "level": "village",
                "parent_code": "370282103-GQ01",
                "path": "/37/3702/370282/370282103/370282103-GQ01/370282103201/",
                "depth": 5,
                "created_at": "2026-11-23T08:00:00Z",
                "updated_at": "2026-11-23T08:00:00Z",
            }
        }
    )

    id: int
    code: str
    name: str
    level: Level
    parent_code: str | None = Field(description="`null` for a root region.")
    path: str = Field(description="Materialized path: the codes from the root down to this region.")
    depth: int = Field(description="Number of ancestors: 0 for a root.")
    created_at: datetime
    updated_at: datetime


ImportStatus = Literal["created", "valid", "error"]


class RegionImportRow(BaseModel):
    """The verdict on one data row of an import file."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "row": 3,
                "line": 4,
                "code": "370282103205",
                "status": "error",
                "error_code": "unknown_parent",
                "detail": "parent region 370282199 not found (a parent in the file must come before its children)",
            }
        }
    )

    row: int = Field(description="Data row number, 1 for the first row after the header.")
    line: int = Field(description="Line of the file where the row ends (the header is line 1).")
    code: str
    status: ImportStatus = Field(
        description="`created` (stored), `valid` (would be stored: dry run, or the file was refused "
        "because of other rows) or `error`."
    )
    error_code: str | None = Field(
        default=None,
        description="`bad_row`, `invalid_code`, `invalid_name`, `invalid_level`, `region_code_taken`, "
        "`duplicate_in_file`, `unknown_parent`, `parent_refused`, `cannot_create_root`, `level_does_not_nest`.",
    )
    detail: str | None = None


class RegionImportReport(BaseModel):
    """What an import did (or, on a dry run, would do) with every row."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "dry_run": False,
                "partial": True,
                "valid": 1,
                "created": 1,
                "refused": 1,
                "rows": [
                    {
                        "row": 1,
                        "line": 2,
                        "code": "370282103204",
                        "status": "created",
                        "error_code": None,
                        "detail": None,
                    },
                    {
                        "row": 2,
                        "line": 3,
                        "code": "370282103205",
                        "status": "error",
                        "error_code": "unknown_parent",
                        "detail": "parent region 370282199 not found "
                        "(a parent in the file must come before its children)",
                    },
                ],
            }
        }
    )

    dry_run: bool
    partial: bool
    valid: int = Field(description="Rows that passed every check.")
    created: int = Field(description="Rows stored (0 on a dry run).")
    refused: int = Field(description="Rows with an error.")
    rows: list[RegionImportRow]
