"""Photos, their perceptual-hash band index, and confirmed reuse matches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
)
from sqlmodel import Field

from services.kit.db import UTCDateTime, utcnow
from services.media.db import MediaTable


class Photo(MediaTable, table=True):
    """One upload. The same bytes uploaded twice are two photos over one stored original (by SHA-256)."""

    __tablename__ = "photos"
    __table_args__ = (
        Index(
            "ix_photos_region_path_prefix",
            "region_path",
            postgresql_ops={"region_path": "varchar_pattern_ops"},
        ),
    )

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    sha256: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    mime: str = Field(sa_column=Column(String(32), nullable=False))
    width: int = Field(sa_column=Column(Integer, nullable=False))
    height: int = Field(sa_column=Column(Integer, nullable=False))
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    purpose: str = Field(sa_column=Column(String(16), nullable=False))
    client_content_type: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))

    uploader: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    uploader_role: str = Field(sa_column=Column(String(16), nullable=False))
    region_code: str = Field(sa_column=Column(String(32), nullable=False))
    region_path: str = Field(sa_column=Column(String(400), nullable=False))
    reuse_scope: str = Field(sa_column=Column(String(400), nullable=False))
    issue_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True, index=True))
    attached_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    claimed_lat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    claimed_lon: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    claimed_taken_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    has_exif: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    exif_taken_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    exif_lat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    exif_lon: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    camera_make: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    camera_model: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    orientation: int | None = Field(default=None, sa_column=Column(SmallInteger, nullable=True))
    flags: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    redacted_key: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class PhotoHash(MediaTable, table=True):
    """One 16-bit band of one 64-bit perceptual hash: candidates are found by exact band lookups."""

    __tablename__ = "photo_hashes"
    # Covering on PostgreSQL: the lookup reads (photo_id, full_hash) from the index alone.
    __table_args__ = (
        Index(
            "ix_photo_hashes_lookup",
            "reuse_scope",
            "band",
            "value",
            postgresql_include=["photo_id", "full_hash"],
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    photo_id: str = Field(
        sa_column=Column(String(32), ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    reuse_scope: str = Field(sa_column=Column(String(400), nullable=False))
    band: int = Field(sa_column=Column(SmallInteger, nullable=False))
    value: int = Field(sa_column=Column(Integer, nullable=False))
    full_hash: int = Field(sa_column=Column(BigInteger, nullable=False))


class PhotoMatch(MediaTable, table=True):
    """A confirmed reuse: `photo_id` (the newer) shows the same picture as `other_id`."""

    __tablename__ = "photo_matches"

    id: int | None = Field(default=None, primary_key=True)
    photo_id: str = Field(
        sa_column=Column(String(32), ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    other_id: str = Field(
        sa_column=Column(String(32), ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    score: float = Field(sa_column=Column(Float, nullable=False))
    distance: int = Field(sa_column=Column(SmallInteger, nullable=False))
    inliers: int = Field(sa_column=Column(Integer, nullable=False))
    mirrored: bool = Field(sa_column=Column(Boolean, nullable=False))
    exact: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Content(MediaTable, table=True):
    """Stored bytes of one SHA-256 (original, variants, features), shared by every photo of those bytes.

    Its row is the lock that keeps an upload relying on stored bytes and the sweep removing them apart.
    """

    __tablename__ = "contents"

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
