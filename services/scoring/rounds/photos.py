"""Scorecard photos, checked and pinned with the media service exactly as a third party would.

On filing, every photo id is looked up in one batch call (`GET /v1/photos?ids=…`, this service's token):
it must exist, have been uploaded for a scorecard (purpose `scorecard`), be the filing inspector's own
upload or taken in the unit, and not be pinned to anything else. After the commit the outbox pins each to
the scorecard (`POST /v1/photos/{id}/attach` with the label `scorecard:{round}:{unit}` and the unit's
region), so media keeps them as evidence from then on; retried until media answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.kit.auth import Caller
from services.kit.errors import BadGateway, GatewayTimeout, ServiceUnavailable, UnprocessableEntity
from services.kit.media import fetch_photos, media_peer, pin_photos
from services.kit.peers import Peer

PIN = "pin_scorecard_photos"  # outbox kind: {"label", "region_code", "region_path", "photo_ids"}
PURPOSE = "scorecard"


class PhotosRefused(UnprocessableEntity):
    code = "photos_refused"


class MediaUnavailable(ServiceUnavailable):
    code = "media_unavailable"


def pin_label(round_id: int, unit_code: str) -> str:
    """What media records a scorecard photo as pinned to."""
    return f"scorecard:{round_id}:{unit_code}"


def _media(peer: Peer | None) -> Peer:
    return media_peer(peer, "scorecard photos")


async def check_photos(
    peer: Peer | None, ids: Sequence[str], caller: Caller, *, unit_code: str, label: str
) -> None:
    """Refuse (422 `photos_refused`, every reason listed) photos this caller cannot put on this scorecard;
    503 when media cannot be asked. Nothing is changed either way."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    media = _media(peer)
    try:
        items = await fetch_photos(media, wanted)
    except (BadGateway, GatewayTimeout, ServiceUnavailable) as exc:
        raise MediaUnavailable(
            f"the media service cannot be read now: {exc}", headers={"Retry-After": "5"}
        ) from exc
    found = {str(item["id"]): item for item in items}
    reasons = refusals(wanted, found, caller, unit_code=unit_code, label=label)
    if len(ids) != len(wanted):
        reasons.append("a photo is listed twice")
    if reasons:
        raise PhotosRefused("; ".join(reasons))


def refusals(
    ids: Sequence[str], found: Mapping[str, Mapping[str, Any]], caller: Caller, *, unit_code: str, label: str
) -> list[str]:
    """Why photos cannot go on a scorecard (empty when all can). Pure."""
    reasons = []
    for photo_id in ids:
        photo = found.get(photo_id)
        if photo is None:
            reasons.append(f"photo {photo_id} not found")
            continue
        own = photo.get("uploader") == str(caller.subject)
        if not own and photo.get("region_code") != unit_code:
            reasons.append(f"photo {photo_id} not found")
        elif photo.get("purpose") != PURPOSE:
            reasons.append(
                f"photo {photo_id} was not uploaded for a scorecard (purpose {photo.get('purpose')})"
            )
        elif photo.get("issue_id") not in (None, label):
            reasons.append(f"photo {photo_id} is evidence of {photo.get('issue_id')} already")
    return reasons


async def pin(peer: Peer | None, payload: Mapping[str, Any]) -> None:
    """Pin each photo to the scorecard (the outbox's handler: idempotent, retried until media answers)."""
    await pin_photos(
        _media(peer),
        payload["photo_ids"],
        label=payload["label"],
        region_code=payload["region_code"],
        region_path=payload["region_path"],
    )
