"""Photo request and response shapes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.kit.auth import Caller
from services.kit.identity import Scope
from services.kit.pagination import envelope_example
from services.media.photos.models import Photo


class Purpose(StrEnum):
    before = "before"
    after = "after"
    scorecard = "scorecard"
    household = "household"
    other = "other"


class Variant(StrEnum):
    thumb = "thumb"
    display = "display"
    original = "original"


class FlagPublic(BaseModel):
    code: str = Field(examples=["gps_far_from_claim"])
    detail: str = Field(examples=["EXIF position is 1,830 km from the claimed position"])
    figures: dict[str, Any] = Field(examples=[{"distance_m": 1830412.0}])


class Facts(BaseModel):
    """What the file itself says (EXIF)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "has_exif": True,
                "taken_at": "2026-11-20T09:12:00+08:00",
                "latitude": 36.3902,
                "longitude": 120.4511,
                "camera_make": "HUAWEI",
                "camera_model": "P60",
                "orientation": 6,
            }
        }
    )

    has_exif: bool
    taken_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None


class Claims(BaseModel):
    """What the uploader said (from `wx.getLocation` and the phone's clock)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"latitude": 36.3901, "longitude": 120.4502, "taken_at": "2026-11-20T09:13:00+08:00"}
        }
    )

    latitude: float | None = None
    longitude: float | None = None
    taken_at: datetime | None = None


class VariantUrls(BaseModel):
    thumb: str
    display: str
    original: str | None = Field(description="Present for callers allowed to fetch originals (staff).")


class PhotoPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "3f1c2a9e8b7d4c6fa1e2d3c4b5a69788",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "mime": "image/jpeg",
                "width": 4000,
                "height": 3000,
                "size_bytes": 3145728,
                "purpose": "after",
                "uploader": "user:12",
                "region_code": "370282103201",
                "issue_id": None,
                "facts": {
                    "has_exif": True,
                    "taken_at": "2026-11-20T09:12:00+08:00",
                    "latitude": 36.39,
                    "longitude": 120.45,
                    "camera_make": "HUAWEI",
                    "camera_model": "P60",
                    "orientation": 1,
                },
                "claims": {"latitude": 36.3901, "longitude": 120.4502, "taken_at": None},
                "flags": [
                    {
                        "code": "reused",
                        "detail": "the same picture: already stored as photo 5b2e… (the earliest copy); "
                        "2 stored photos show this picture",
                        "figures": {
                            "other_photo_id": "5b2e…",
                            "elsewhere": False,
                            "score": 0.93,
                            "earliest": True,
                            "attached": False,
                            "group_size": 2,
                        },
                    }
                ],
                "urls": {
                    "thumb": "/v1/photos/3f1c…/content?variant=thumb",
                    "display": "/v1/photos/3f1c…/content?variant=display",
                    "original": None,
                },
                "created_at": "2026-11-20T01:15:02Z",
            }
        }
    )

    id: str
    sha256: str
    mime: str
    width: int
    height: int
    size_bytes: int
    purpose: Purpose
    uploader: str
    region_code: str
    issue_id: str | None
    attached_at: datetime | None = None
    redacted: bool = False
    facts: Facts
    claims: Claims
    flags: list[FlagPublic]
    urls: VariantUrls
    created_at: datetime


class PhotoBatch(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=envelope_example(missing=["0f3c9a1b2d4e5f60718293a4b5c6d7e8"])
    )

    items: list[PhotoPublic]
    missing: list[str] = Field(description="Ids not found or outside the caller's region.")


class AttachRequest(BaseModel):
    """The issue a photo now belongs to, and that issue's region (the photo's scope from then on)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "issue_id": "370282-2026-001104",
                    "region_code": "370282103201",
                    "region_path": "/37/3702/370282/370282103/370282103201/",
                }
            ]
        }
    )

    issue_id: str = Field(min_length=1, max_length=64, examples=["370282-2026-001104"])
    region_code: str = Field(min_length=1, max_length=32, examples=["370282103201"])
    region_path: str = Field(
        min_length=1,
        max_length=400,
        pattern=r"^/([0-9A-Za-z-]+/)*$",
        examples=["/37/3702/370282/370282103/370282103201/"],
    )


class RedactionBox(BaseModel):
    """A rectangle in display-copy pixels."""

    model_config = ConfigDict(json_schema_extra={"example": {"x": 120, "y": 80, "width": 200, "height": 60}})

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class RedactRequest(BaseModel):
    """Rectangles to black out of the display copy (and thumbnail); they add to any earlier ones."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"boxes": [{"x": 120, "y": 80, "width": 200, "height": 60}]}]}
    )

    boxes: list[RedactionBox] = Field(
        min_length=1, max_length=50, examples=[[{"x": 120, "y": 80, "width": 200, "height": 60}]]
    )


class SimilarPhoto(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "photo_id": "5b2e0c1d9f8a4e7b8c6d5e4f3a2b1c0d",
                "score": 0.91,
                "distance": 4,
                "inliers": 137,
                "mirrored": True,
                "exact": False,
                "created_at": "2026-11-21T02:10:44Z",
            }
        }
    )

    photo_id: str
    score: float = Field(description="Confidence of the geometric match, 0–1.")
    distance: int = Field(description="Hamming distance between the closest perceptual hashes (0–64).")
    inliers: int
    mirrored: bool
    exact: bool = Field(description="Byte-identical (same SHA-256).")
    created_at: datetime


class SimilarList(BaseModel):
    model_config = ConfigDict(json_schema_extra=envelope_example())

    items: list[SimilarPhoto]


def photo_public(photo: Photo, caller: Caller) -> PhotoPublic:
    """A photo as its caller may see it (the original's link only with the `photos:original` scope)."""
    base = f"/v1/photos/{photo.id}/content?variant="
    return PhotoPublic(
        id=photo.id,
        sha256=photo.sha256,
        mime=photo.mime,
        width=photo.width,
        height=photo.height,
        size_bytes=photo.size_bytes,
        purpose=Purpose(photo.purpose),
        uploader=photo.uploader,
        region_code=photo.region_code,
        issue_id=photo.issue_id,
        attached_at=photo.attached_at,
        redacted=photo.redacted_key is not None,
        facts=Facts(
            has_exif=photo.has_exif,
            taken_at=photo.exif_taken_at,
            latitude=photo.exif_lat,
            longitude=photo.exif_lon,
            camera_make=photo.camera_make,
            camera_model=photo.camera_model,
            orientation=photo.orientation,
        ),
        claims=Claims(
            latitude=photo.claimed_lat, longitude=photo.claimed_lon, taken_at=photo.claimed_taken_at
        ),
        flags=[FlagPublic.model_validate(f) for f in photo.flags],
        urls=VariantUrls(
            thumb=base + "thumb",
            display=base + "display",
            original=base + "original" if caller.has(Scope.photos_original) else None,
        ),
        created_at=photo.created_at,
    )
