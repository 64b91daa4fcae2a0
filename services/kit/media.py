"""The media service's public API as the other services call it, with their own service token.

Issue evidence (issues) and scorecard photos (scoring) are looked up in one batch and pinned after the
commit the same way: `GET /v1/photos?ids=…` and `POST /v1/photos/{id}/attach`. A service without a media
URL answers 503 `media_not_configured` where it would need one; media answering anything unexpected is 503
`media_unavailable` (try again), never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import StringConstraints

from services.kit.errors import BadGateway, GatewayTimeout, ServiceUnavailable
from services.kit.peers import Peer

__all__ = ["PhotoId", "fetch_photos", "media_peer", "media_request", "pin_photos"]

# A media photo id as it is given out (`uuid4().hex`): what the other services take in their bodies.
PhotoId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]

logger = logging.getLogger("huanzhi.media_client")


def media_peer(peer: Peer | None, what: str) -> Peer:
    """The media peer, or 503 `media_not_configured` saying what could not be checked (`what`)."""
    if peer is None:
        raise ServiceUnavailable(
            f"{what} cannot be checked: no media service is configured",
            code="media_not_configured",
            headers={"Retry-After": "30"},
        )
    return peer


def _unavailable(why: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the media service {why}", code="media_unavailable", headers={"Retry-After": "5"}
    )


async def media_request(media: Peer, method: str, path: str, **kwargs: Any) -> Any:
    """A request to media whose every failure — unreachable, too slow, a 5xx — is 503 `media_unavailable`
    with `Retry-After` (the caller tries again; nothing was changed), as the peer's own 502/503/504 would
    tell a client three different things about one fact: media cannot be asked now."""
    try:
        return await media.request(method, path, **kwargs)
    except (BadGateway, GatewayTimeout, ServiceUnavailable) as exc:
        raise _unavailable(f"cannot be asked now ({exc.detail})") from exc


async def fetch_photos(media: Peer, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Media's records of these photos (a service token sees every photo); missing ids are absent."""
    if not ids:
        return []
    response = await media_request(media, "GET", "/v1/photos", params={"ids": ",".join(dict.fromkeys(ids))})
    if response.status_code != 200:
        raise _unavailable(f"answered {response.status_code}")
    items: list[dict[str, Any]] = response.json().get("items", [])
    return items


async def pin_photos(
    media: Peer, photo_ids: Sequence[str], *, label: str, region_code: str, region_path: str
) -> None:
    """Pin each photo to `label` (an issue's code, a scorecard's label): media keeps it as evidence from then
    on. Idempotent; an outbox handler retries it until media answers. A photo pinned to something else in
    the meantime (409) stays that one's evidence: logged, nothing to retry."""
    body = {"issue_id": label, "region_code": region_code, "region_path": region_path}
    for photo_id in photo_ids:
        response = await media_request(media, "POST", f"/v1/photos/{photo_id}/attach", json=body)
        if response.status_code == 409:
            logger.warning("photo %s could not be pinned to %s: %s", photo_id, label, response.text)
        elif response.status_code != 200:
            raise _unavailable(f"answered {response.status_code}")
