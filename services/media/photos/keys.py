"""Object keys: content-addressed by SHA-256, so the same bytes are stored once."""

from __future__ import annotations


def original_key(sha256: str) -> str:
    return f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def thumb_key(sha256: str) -> str:
    return f"thumbs/{sha256[:2]}/{sha256}.jpg"


def display_key(sha256: str) -> str:
    return f"display/{sha256[:2]}/{sha256}.jpg"


def features_key(sha256: str) -> str:
    return f"features/{sha256[:2]}/{sha256}.bin"


def redacted_key(photo_id: str) -> str:
    return f"redacted/{photo_id[:2]}/{photo_id}.jpg"


def redacted_thumb_key(photo_id: str) -> str:
    return f"redacted/{photo_id[:2]}/{photo_id}-thumb.jpg"


INCOMING_PREFIX = "incoming/"  # presigned uploads not yet completed: temporary by nature


def incoming_key(upload_id: str) -> str:
    return f"{INCOMING_PREFIX}{upload_id}"


def content_keys(sha256: str) -> list[str]:
    """Everything stored for one content hash; the original is written last, so its presence means all are."""
    return [thumb_key(sha256), display_key(sha256), features_key(sha256), original_key(sha256)]
