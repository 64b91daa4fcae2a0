"""Photo checks (pure): what the EXIF facts say against what the uploader claims. Flags, never refusals.

Photos from WeChat often lose their EXIF, so every finding here is a flag with its figures for a person to
weigh; nothing in this module refuses an upload. No Pillow, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from services.kit.geo import distance_m
from services.media.imaging.facts import CHINA_TIME

# Loose bounding box around China (incl. the South China Sea islands): a position outside is implausible
# for evidence photos of rural China and worth a human look.
CHINA_LAT = (3.5, 54.0)
CHINA_LON = (73.0, 135.5)
NULL_ISLAND_DEGREES = 1e-4  # (0, 0) is what broken GPS stacks write


class PhotoFacts(Protocol):
    """The facts the checks read (ExifFacts satisfies it; so does a stored photo row with these columns)."""

    @property
    def has_exif(self) -> bool: ...
    @property
    def taken_at(self) -> datetime | None: ...
    @property
    def gps(self) -> tuple[float, float] | None: ...
    @property
    def malformed(self) -> bool: ...


@dataclass(frozen=True)
class Flag:
    """One check that fired: a stable `code`, a human `detail` and the figures behind it."""

    code: str
    detail: str
    figures: dict[str, float | str | None] = field(default_factory=dict)


def plausible_position(position: tuple[float, float]) -> bool:
    """False for (0, 0) and for positions outside a loose box around China."""
    lat, lon = position
    if abs(lat) < NULL_ISLAND_DEGREES and abs(lon) < NULL_ISLAND_DEGREES:
        return False
    return CHINA_LAT[0] <= lat <= CHINA_LAT[1] and CHINA_LON[0] <= lon <= CHINA_LON[1]


def as_aware(moment: datetime) -> datetime:
    """`moment` with a zone; a naive time is read as China time, like an EXIF time without offset."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_TIME)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def photo_checks(
    facts: PhotoFacts,
    *,
    claimed_position: tuple[float, float] | None,
    claimed_taken_at: datetime | None,
    received_at: datetime,
    max_distance_m: float = 500,
    max_age_hours: float = 72,
    future_tolerance_minutes: float = 10,
    claimed_time_tolerance_minutes: float = 30,
) -> list[Flag]:
    """Flags for a photo's facts against the uploader's claims and the time it was received.

    Each threshold is crossed strictly (exactly 500 m away is not far); figures are rounded for display.
    """
    flags: list[Flag] = []
    if not facts.has_exif:
        flags.append(Flag("exif_missing", "照片没有 EXIF 信息（微信等渠道常会去除）", {}))
    if facts.malformed:
        flags.append(Flag("exif_malformed", "照片的 EXIF 信息损坏或不可读", {}))

    gps = facts.gps
    if gps is not None:
        lat, lon = gps
        if not plausible_position(gps):
            flags.append(
                Flag("gps_implausible", "EXIF 位置不合理（0,0 或在中国范围以外）", {"lat": lat, "lon": lon})
            )
        if claimed_position is not None:
            distance = distance_m(gps, claimed_position)
            if distance > max_distance_m:
                flags.append(
                    Flag(
                        "gps_far_from_claim",
                        f"EXIF 位置距上报位置 {distance:,.0f} 米",
                        {
                            "distance_m": round(distance, 1),
                            "max_distance_m": max_distance_m,
                            "exif_lat": lat,
                            "exif_lon": lon,
                            "claimed_lat": claimed_position[0],
                            "claimed_lon": claimed_position[1],
                        },
                    )
                )

    if facts.taken_at is not None:
        taken_at = as_aware(facts.taken_at)
        ahead = taken_at - as_aware(received_at)
        if ahead > timedelta(minutes=future_tolerance_minutes):
            flags.append(
                Flag(
                    "taken_in_future",
                    f"拍摄时间比上传时间晚 {_hours(ahead):.1f} 小时",
                    {"hours_ahead": round(_hours(ahead), 2), "taken_at": taken_at.isoformat()},
                )
            )
        elif -ahead > timedelta(hours=max_age_hours):
            flags.append(
                Flag(
                    "taken_long_before_upload",
                    f"照片拍摄于上传前 {_hours(-ahead):.1f} 小时",
                    {
                        "age_hours": round(_hours(-ahead), 2),
                        "max_age_hours": max_age_hours,
                        "taken_at": taken_at.isoformat(),
                    },
                )
            )
        if claimed_taken_at is not None:
            gap = abs(taken_at - as_aware(claimed_taken_at))
            if gap > timedelta(minutes=claimed_time_tolerance_minutes):
                flags.append(
                    Flag(
                        "claimed_time_mismatch",
                        f"EXIF 拍摄时间与上报时间相差 {_hours(gap):.1f} 小时",
                        {
                            "hours_apart": round(_hours(gap), 2),
                            "taken_at": taken_at.isoformat(),
                            "claimed_taken_at": as_aware(claimed_taken_at).isoformat(),
                        },
                    )
                )
    return flags
