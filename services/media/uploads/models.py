"""Presigned uploads: a slot in the object store, completed (or expired and swept) later."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Float, String
from sqlmodel import Field

from services.kit.db import UTCDateTime, utcnow
from services.media.db import MediaTable


class Upload(MediaTable, table=True):
    __tablename__ = "uploads"

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    object_key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    status: str = Field(
        sa_column=Column(String(16), nullable=False, index=True)
    )  # pending|completed|refused|expired
    purpose: str = Field(sa_column=Column(String(16), nullable=False))
    uploader: str = Field(sa_column=Column(String(64), nullable=False))
    uploader_role: str = Field(sa_column=Column(String(16), nullable=False))
    region_code: str = Field(sa_column=Column(String(32), nullable=False))
    region_path: str = Field(sa_column=Column(String(400), nullable=False))
    claimed_lat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    claimed_lon: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    claimed_taken_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    photo_id: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    # When the sweeper removed the slot's object for good: past the link's expiry nothing can write it again.
    swept_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
