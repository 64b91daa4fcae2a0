"""Object stores for photo bytes: S3/MinIO or a local folder, behind one interface."""

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
from services.media.storage.s3 import S3Store

__all__ = [
    "InvalidKey",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "ObjectTooLarge",
    "PresignedPost",
    "S3Store",
    "StoreUnavailable",
    "WriteGuard",
    "check_key",
    "sign_local",
    "verify_local_signature",
]
