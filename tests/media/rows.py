"""Photo rows written straight to the media database, for tests of the reuse lookup below the API."""

from __future__ import annotations

import uuid

from services.media.photos.models import Photo
from tests.support.builders import VILLAGE


def photo_row(photo_id: str, scope: str, *, sha256: str | None = None) -> Photo:
    """An after photo of the village's cadre, in the reuse scope `scope` (a region path)."""
    return Photo(
        id=photo_id,
        sha256=sha256 or uuid.uuid4().hex * 2,
        mime="image/jpeg",
        width=1600,
        height=1200,
        size_bytes=1000,
        purpose="after",
        uploader="user:1",
        uploader_role="village",
        region_code=VILLAGE,
        region_path=scope,
        reuse_scope=scope,
    )
