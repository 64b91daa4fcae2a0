"""What a picture's EXIF says: the facts the photo checks weigh (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# EXIF times carry no zone unless OffsetTimeOriginal is set; phones in China write local time.
# A fixed +08:00 (China has had no daylight saving time since 1991) needs no tz database.
CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class ExifFacts:
    """What a photo's EXIF says; `malformed` means EXIF is present but (partly) unreadable."""

    has_exif: bool = False
    taken_at: datetime | None = None
    gps: tuple[float, float] | None = None
    make: str | None = None
    model: str | None = None
    orientation: int | None = None
    malformed: bool = False


NO_EXIF = ExifFacts()
