"""The reuse flag names the other photo only where the uploader may read it (issue 7).

Reuse is looked for in the whole county's archive, but a photo belongs to its uploader's region: an
uploader in another town, a grid worker below the village, a citizen who did not take it, all get 404 for
it. Their flag says the picture is already stored elsewhere in the county, without the photo's id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from services.kit.identity import Subject
from tests.media.api import complete, flags, open_slot, put_bytes, uploaded
from tests.media.images import jpeg
from tests.support.builders import COUNTY, FAR_VILLAGE, GRID, TOWN, VILLAGE

Auth = Callable[..., dict[str, str]]


def _reused(photo: dict[str, Any]) -> dict[str, Any]:
    flag = flags(photo).get("reused")
    assert flag is not None, photo["flags"]
    return flag


def assert_named(photo: dict[str, Any], other_id: str) -> None:
    flag = _reused(photo)
    assert flag["figures"]["other_photo_id"] == other_id
    assert flag["figures"]["elsewhere"] is False
    assert other_id in flag["detail"]


def assert_elsewhere(photo: dict[str, Any], hidden_id: str) -> None:
    flag = _reused(photo)
    assert "other_photo_id" not in flag["figures"]
    assert flag["figures"]["elsewhere"] is True
    assert flag["figures"]["exact"] is True and flag["figures"]["score"] == 1.0
    assert "elsewhere in the county" in flag["detail"]
    assert hidden_id not in json.dumps(photo)  # nowhere in the answer


async def test_an_uploader_in_another_town_is_told_of_the_match_but_not_its_id(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    data = jpeg(480, 360, seed=71)
    first = await uploaded(client, auth("village", VILLAGE), data)
    far = auth("village", FAR_VILLAGE)

    second = await uploaded(client, far, data)

    assert_elsewhere(second, first["id"])
    # What the uploader can do with the first photo: nothing, as before.
    assert (await client.get(f"/v1/photos/{first['id']}", headers=far)).status_code == 404
    similar = await client.get(f"/v1/photos/{second['id']}/similar", headers=far)
    assert similar.status_code == 200 and similar.json()["items"] == []
    # County staff still see both sides of the match.
    listed = await client.get(f"/v1/photos/{second['id']}/similar", headers=auth("inspector", COUNTY))
    assert [m["photo_id"] for m in listed.json()["items"]] == [first["id"]]


async def test_an_uploader_whose_region_holds_the_other_photo_is_given_its_id(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    data = jpeg(480, 360, seed=72)
    first = await uploaded(client, auth("village", VILLAGE), data)

    by_town_officer = await uploaded(client, auth("officer", TOWN), data)
    by_grid_worker = await uploaded(client, auth("grid", GRID), data)  # below the village: cannot read it

    assert_named(by_town_officer, first["id"])
    assert_elsewhere(by_grid_worker, first["id"])
    # The grid worker's own earlier upload is named to it again.
    again = await uploaded(client, auth("grid", GRID), data)
    named = [f["figures"].get("other_photo_id") for f in again["flags"] if f["code"] == "reused"]
    assert by_grid_worker["id"] in named and first["id"] not in named and by_town_officer["id"] not in named


async def test_a_citizen_is_named_only_its_own_photos(client: httpx.AsyncClient, auth: Auth) -> None:
    data = jpeg(480, 360, seed=73)
    cadre = await uploaded(client, auth("village", VILLAGE), data)
    citizen = auth("citizen", VILLAGE, subject=Subject.user(4242))

    mine = await uploaded(client, citizen, data)
    assert_elsewhere(mine, cadre["id"])

    mine_again = await uploaded(client, citizen, data)
    named = [f["figures"].get("other_photo_id") for f in mine_again["flags"] if f["code"] == "reused"]
    assert mine["id"] in named and cadre["id"] not in named


async def test_a_presigned_upload_completed_in_another_town_is_not_told_the_id(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    data = jpeg(480, 360, seed=74)
    first = await uploaded(client, auth("village", VILLAGE), data)
    far = auth("village", FAR_VILLAGE)
    slot = await open_slot(client, far)
    sent = await put_bytes(client, slot["put_url"], data)
    assert sent.status_code in (200, 201), sent.text

    r = await complete(client, far, slot["id"])

    assert r.status_code == 201, r.text
    assert_elsewhere(r.json(), first["id"])
