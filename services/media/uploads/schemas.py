"""Presigned upload shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.media.photos.schemas import Purpose


class UploadCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "purpose": "after",
                "latitude": 36.3901,
                "longitude": 120.4502,
                "taken_at": "2026-11-20T09:13:00+08:00",
            }
        }
    )

    purpose: Purpose = Purpose.other
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    taken_at: datetime | None = None

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
