"""Photo evidence, checked with the media service exactly as a third party would (service token, HTTP).

On report and submit each photo id is looked up in one batch call (it must exist, be the caller's own or
lie in the caller's region, and not be pinned to another issue); its SHA-256 and media's flags go into
the event. After the commit the photos are pinned to the issue through the outbox. At submit the after
photos are also weighed against the issue: how far from its point they were taken, whether before it was
reported, and whether they are a copy of its own before photo or of another issue's photo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.kit.auth import Caller
from services.kit.errors import ServiceUnavailable, UnprocessableEntity
from services.kit.geo import distance_m
from services.kit.identity import Role, is_within
from services.kit.media import fetch_photos as kit_fetch_photos
from services.kit.media import media_peer, media_request, pin_photos
from services.kit.peers import Peer

ATTACH = "attach_photos"  # outbox kind: {"issue_code", "region_code", "region_path", "photo_ids"}

# Findings that block acceptance unless the accepter gives a reason; `no_exif` is only shown (WeChat
# strips EXIF from most photos).
BLOCKING_FLAGS = frozenset(
    {
        "far_from_issue",
        "taken_before_report",
        "reuses_before_photo",
        "reuses_returned_photo",
        "reuses_photo_of_issue",
    }
)


class PhotosRefused(UnprocessableEntity):
    code = "photos_refused"


@dataclass(frozen=True)
class MediaPhoto:
    id: str
    sha256: str
    uploader: str
    region_path: str | None
    issue_id: str | None
    has_exif: bool
    taken_at: datetime | None
    position: tuple[float, float] | None
    flags: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, body: Mapping[str, Any], region_paths: Mapping[str, str]) -> MediaPhoto:
        facts = body.get("facts") or {}
        lat, lon = facts.get("latitude"), facts.get("longitude")
        taken = facts.get("taken_at")
        return cls(
            id=str(body["id"]),
            sha256=str(body["sha256"]),
            uploader=str(body.get("uploader", "")),
            region_path=region_paths.get(str(body.get("region_code", ""))),
            issue_id=body.get("issue_id"),
            has_exif=bool(facts.get("has_exif")),
            taken_at=datetime.fromisoformat(taken) if isinstance(taken, str) else None,
            position=(float(lat), float(lon)) if lat is not None and lon is not None else None,
            flags=list(body.get("flags") or []),
        )


def _media(peer: Peer | None) -> Peer:
    return media_peer(peer, "photo evidence")


async def fetch_photos(peer: Peer | None, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Media's records of these photos (service token: it sees every photo); missing ids are absent."""
    return await kit_fetch_photos(_media(peer), ids) if ids else []


async def similar_ids(peer: Peer | None, photo_id: str) -> list[str]:
    """Ids of the photos media has confirmed show the same picture as `photo_id`."""
    response = await media_request(_media(peer), "GET", f"/v1/photos/{photo_id}/similar")
    if response.status_code != 200:
        raise ServiceUnavailable(
            f"the media service answered {response.status_code}",
            code="media_unavailable",
            headers={"Retry-After": "5"},
        )
    return [str(item["photo_id"]) for item in response.json()["items"]]


async def attach(peer: Peer | None, payload: Mapping[str, Any]) -> None:
    """Pin each photo to the issue (the outbox's handler: idempotent, retried until media answers)."""
    await pin_photos(
        _media(peer),
        payload["photo_ids"],
        label=payload["issue_code"],
        region_code=payload["region_code"],
        region_path=payload["region_path"],
    )


def refusals(
    ids: Sequence[str], found: Mapping[str, MediaPhoto], caller: Caller, *, issue_code: str | None
) -> list[str]:
    """Why photos cannot be used by this caller (empty when all can): unknown, someone else's outside the
    caller's region, or pinned to another issue."""
    reasons = []
    for photo_id in ids:
        photo = found.get(photo_id)
        if photo is None:
            reasons.append(f"photo {photo_id} not found")
            continue
        own = photo.uploader == str(caller.subject)
        in_region = photo.region_path is not None and is_within(photo.region_path, caller.region_path)
        if not own and (caller.role is Role.citizen or not in_region):
            reasons.append(f"photo {photo_id} not found")
        elif photo.issue_id is not None and photo.issue_id != issue_code:
            reasons.append(f"photo {photo_id} is evidence of issue {photo.issue_id} already")
    return reasons


def evidence_record(photo: MediaPhoto, findings: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """What an event keeps of a photo: its content hash, media's flags and the issue's own findings."""
    return {"id": photo.id, "sha256": photo.sha256, "flags": [*photo.flags, *findings]}


def after_photo_findings(
    photo: MediaPhoto,
    *,
    issue_position: tuple[float, float] | None,
    reported_at: datetime,
    max_distance_m: float,
    before_ids: Sequence[str],
    reused_from: Mapping[str, str | None],
    issue_code: str,
) -> list[dict[str, Any]]:
    """What an after photo says against its issue (`issue_code`) (pure). `reused_from`: confirmed
    look-alikes of this photo → the issue code each belongs to (None for an unpinned one). A photo of this
    issue that is not one of its before photos was handed in as a fix before, and returned (退回)."""
    findings: list[dict[str, Any]] = []
    if not photo.has_exif:
        findings.append({"code": "no_exif", "detail": "the photo carries no EXIF (WeChat strips it)"})
    if photo.position is not None and issue_position is not None:
        metres = distance_m(photo.position, issue_position)
        if metres > max_distance_m:
            findings.append(
                {
                    "code": "far_from_issue",
                    "detail": f"taken {metres:.0f} m from the issue's point",
                    "figures": {"distance_m": round(metres, 1), "max_distance_m": max_distance_m},
                }
            )
    if photo.taken_at is not None and photo.taken_at < reported_at:
        findings.append(
            {
                "code": "taken_before_report",
                "detail": "the photo was taken before the issue was reported",
                "figures": {"taken_at": photo.taken_at.isoformat(), "reported_at": reported_at.isoformat()},
            }
        )
    if photo.id in before_ids:
        findings.append(_reuse("reuses_before_photo", photo.id))
    elif photo.issue_id == issue_code:
        findings.append(_reuse("reuses_returned_photo", photo.id))
    for other_id, other_issue in sorted(reused_from.items()):
        if other_id in before_ids:
            findings.append(_reuse("reuses_before_photo", other_id))
        elif other_issue == issue_code:
            findings.append(_reuse("reuses_returned_photo", other_id))
        elif other_issue is not None:
            findings.append(
                {
                    "code": "reuses_photo_of_issue",
                    "detail": f"the after photo is a copy of a photo of issue {other_issue}",
                    "figures": {"photo_id": other_id, "issue_code": other_issue},
                }
            )
    return findings


_REUSE_DETAILS = {
    "reuses_before_photo": "the after photo is a copy of this issue's own before photo",
    "reuses_returned_photo": "the after photo is a copy of a fix handed in for this issue before and returned",
}


def _reuse(code: str, photo_id: str) -> dict[str, Any]:
    return {"code": code, "detail": _REUSE_DETAILS[code], "figures": {"photo_id": photo_id}}


def blocking(findings: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({str(f["code"]) for f in findings if f.get("code") in BLOCKING_FLAGS})
