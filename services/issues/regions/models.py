"""The region tree: province › city › county › town › 管区 › village › grid, with a materialized path."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, String, func, text
from sqlmodel import Field

from services.issues.db import IssuesTable
from services.kit.db import UTCDateTime, utcnow


class Level(StrEnum):
    province = "province"
    city = "city"
    county = "county"
    town = "town"  # 乡镇 / 街道
    zone = "zone"  # 管区 (optional)
    village = "village"  # 村 / 社区
    grid = "grid"  # 网格


DEPTH: dict[Level, int] = {level: i for i, level in enumerate(Level)}


class Region(IssuesTable, table=True):
    __tablename__ = "regions"
    # PostgreSQL uses a btree for LIKE 'prefix%' only with pattern ops (the unique index serves equality).
    __table_args__ = (
        Index("ix_regions_path_prefix", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
        # Codes differ in more than case: `…-W01` and `…-w01` would read as one region to a person.
        Index("uq_regions_code_lower", func.lower(text("code")), unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    level: str = Field(sa_column=Column(String(16), nullable=False))
    parent_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("regions.id", ondelete="RESTRICT"), nullable=True, index=True),
    )
    # "/37/3702/370282/370282103/": everything under a region is one indexed prefix query.
    path: str = Field(sa_column=Column(String(400), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
