"""Object stores for photo bytes: S3/MinIO or a local folder, behind one interface.

`S3Store` lives in `services.media.storage.s3` and is imported from there: the MinIO client costs start-up
time that a service on the local store never needs.
"""

from services.media.storage.base import (
    InvalidKey,
    ObjectInfo,
    ObjectStore,
    ObjectTooLarge,
    PresignedPost,
    StoreUnavailable,
    WriteGuard,
    check_key,
)
from services.media.storage.local import LocalStore, sign_local, verify_local_signature

__all__ = [
    "InvalidKey",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "ObjectTooLarge",
    "PresignedPost",
    "StoreUnavailable",
    "WriteGuard",
    "check_key",
    "sign_local",
    "verify_local_signature",
]
