"""Staff and citizen accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String
from sqlmodel import Field

from services.issues.db import IssuesTable
from services.kit.db import UTCDateTime, utcnow


class User(IssuesTable, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str | None = Field(default=None, sa_column=Column(String(64), nullable=True, unique=True))
    display_name: str = Field(sa_column=Column(String(100), nullable=False))
    phone: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    region_id: int = Field(sa_column=Column(Integer, ForeignKey("regions.id"), nullable=False, index=True))
    password_hash: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    wechat_openid: str | None = Field(default=None, sa_column=Column(String(64), nullable=True, unique=True))
    disabled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    created_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
