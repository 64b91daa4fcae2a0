"""Issue categories (问题类别): the county's taxonomy, its default deadlines and the extra fields intake asks for."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Column, Index, Integer, String, func, text
from sqlmodel import Field

from services.issues.db import IssuesTable
from services.kit.db import UTCDateTime, utcnow


class Severity(StrEnum):
    """How bad a problem is; with the category it sets the default deadline (整改时限)."""

    minor = "minor"  # 轻微
    normal = "normal"  # 一般
    serious = "serious"  # 严重


class FieldType(StrEnum):
    """The type of one extra field a category asks for."""

    string = "string"
    number = "number"
    datetime = "datetime"  # RFC 3339 with an offset
    choice = "choice"  # one of `choices`
    multi_choice = "multi_choice"  # a list of distinct `choices`


class Category(IssuesTable, table=True):
    """One category of the taxonomy: county-wide, never region-scoped; retired by `active = false`, never deleted."""

    __tablename__ = "categories"
    __table_args__ = (
        # Codes differ in more than case: `luan-dui-fang` and `Luan-Dui-Fang` would read as one category.
        Index("uq_categories_code_lower", func.lower(text("code")), unique=True),
        CheckConstraint(
            "deadline_minor_days BETWEEN 1 AND 365 AND deadline_normal_days BETWEEN 1 AND 365 "
            "AND deadline_serious_days BETWEEN 1 AND 365",
            name="deadline_days_range",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(50), nullable=False))
    group: str = Field(sa_column=Column("group_name", String(20), nullable=False, index=True))
    # Default deadline in working days, per severity.
    deadline_minor_days: int = Field(sa_column=Column(Integer, nullable=False))
    deadline_normal_days: int = Field(sa_column=Column(Integer, nullable=False))
    deadline_serious_days: int = Field(sa_column=Column(Integer, nullable=False))
    # The extra fields intake validates: [{key, label, type, required, choices}, …] (see rules.FieldSpec).
    fields: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
