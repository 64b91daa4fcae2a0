"""Presigned upload shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.kit.fields import Moment, not_nullable
from services.kit.geo import BOTH_OR_NEITHER, Latitude, Longitude
from services.media.photos.schemas import Purpose


class UploadCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "purpose": "after",
                "latitude": 36.3901,
                "longitude": 120.4502,
                "taken_at": "2026-11-20T09:13:00+08:00",
            },
            "allOf": BOTH_OR_NEITHER,
        }
    )

    purpose: Purpose = Purpose.other
    latitude: Latitude | None = Field(
        default=None, description="WGS-84, with `longitude`.", json_schema_extra=not_nullable
    )
    longitude: Longitude | None = Field(
        default=None, description="WGS-84, with `latitude`.", json_schema_extra=not_nullable
    )
    taken_at: Moment | None = Field(
        default=None, description="Claimed capture time, RFC 3339.", json_schema_extra=not_nullable
    )

    @field_validator("latitude", "longitude", "taken_at", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> UploadCreate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class PostForm(BaseModel):
    url: str
    fields: dict[str, str]


class UploadPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "8d0c7a1f2e3b4c5d6e7f8091a2b3c4d5",
                "status": "pending",
                "put_url": "https://oss.example.cn/huanzhi-media/incoming/8d0c…?X-Amz-Expires=900&X-Amz-Signature=…",
                "post": {
                    "url": "https://oss.example.cn/huanzhi-media",
                    "fields": {"key": "incoming/8d0c…", "policy": "eyJ…", "x-amz-signature": "…"},
                },
                "max_bytes": 20971520,
                "expires_at": "2026-11-23T10:15:00Z",
                "photo_id": None,
            }
        }
    )

    id: str
    status: str = Field(description="pending, completed, refused or expired")
    put_url: str | None = Field(description="PUT the bytes here before `expires_at` (pending only).")
    post: PostForm | None = Field(
        description="Or POST them as a form with these fields (the file field last)."
    )
    max_bytes: int
    expires_at: datetime
    photo_id: str | None = None
