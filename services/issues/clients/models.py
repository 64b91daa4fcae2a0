"""API clients (integrations and the other services) for the client-credentials grant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field

from services.issues.db import IssuesTable
from services.kit.db import UTCDateTime, utcnow


class ApiClient(IssuesTable, table=True):
    __tablename__ = "api_clients"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    secret_hash: str = Field(sa_column=Column(String(255), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    scopes: str = Field(sa_column=Column(String(1000), nullable=False))  # space-separated
    region_id: int = Field(sa_column=Column(Integer, ForeignKey("regions.id"), nullable=False, index=True))
    created_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
