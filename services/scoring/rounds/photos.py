"""Scorecard photos, checked and pinned with the media service exactly as a third party would.

On filing, every photo id is looked up in one batch call (`GET /v1/photos?ids=…`, this service's token):
it must exist, have been uploaded for a scorecard (purpose `scorecard`), be the filing inspector's own
upload or taken in the unit's subtree (the village itself or one of its grids, placed by the region's path:
the round's snapshot first, the issues service for a region below it), and not be pinned to anything else. After the commit the outbox pins each to
the scorecard (`POST /v1/photos/{id}/attach` with the label `scorecard:{round}:{unit}` and the unit's
region), so media keeps them as evidence from then on; retried until media answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
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


# Where the regions of some photos lie: region code → path, for the codes it can place (a code it cannot
# place is left out, and its photos are refused).
Locate = Callable[[Sequence[str]], Awaitable[Mapping[str, str]]]


async def check_photos(
    peer: Peer | None,
    ids: Sequence[str],
    caller: Caller,
    *,
    unit_path: str,
    label: str,
    locate: Locate,
) -> None:
    """Refuse (422 `photos_refused`, every reason listed) photos this caller cannot put on this scorecard;
    503 when media (or, to place a photo's region, the issues service) cannot be asked. Nothing is changed
    either way."""
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
    # Only the photos of others need their region placed; media names a photo's region by code alone.
    codes = {
        str(photo.get("region_code"))
        for photo in found.values()
        if photo.get("uploader") != str(caller.subject) and photo.get("region_code")
    }
    paths = await locate(sorted(codes)) if codes else {}
    reasons = refusals(wanted, found, caller, unit_path=unit_path, paths=paths, label=label)
    if len(ids) != len(wanted):
        reasons.append("a photo is listed twice")
    if reasons:
        raise PhotosRefused("; ".join(reasons))


def refusals(
    ids: Sequence[str],
    found: Mapping[str, Mapping[str, Any]],
    caller: Caller,
    *,
    unit_path: str,
    paths: Mapping[str, str],
    label: str,
) -> list[str]:
    """Why photos cannot go on a scorecard (empty when all can): a photo must be the caller's own upload or
    taken in the unit's subtree (the unit itself, or a grid of it), by `paths` (region code → path). Pure."""
    reasons = []
    for photo_id in ids:
        photo = found.get(photo_id)
        if photo is None:
            reasons.append(f"photo {photo_id} not found")
            continue
        own = photo.get("uploader") == str(caller.subject)
        if not own and not paths.get(str(photo.get("region_code")), "").startswith(unit_path):
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
