"""The CPU-bound part of taking in a photo: hash, check, decode once, make variants and a fingerprint.

Runs in a worker thread; touches neither the database nor the object store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from services.media.imaging.images import Inspected, Variants, inspect_and_make_variants
from services.media.reuse import Fingerprint, fingerprint


@dataclass(frozen=True)
class Processed:
    sha256: str
    size_bytes: int
    inspected: Inspected
    variants: Variants
    fingerprint: Fingerprint


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def process(path: Path, *, max_pixels: int) -> Processed:
    """Refuses (raising the imaging module's problem) anything that is not a sound image within limits."""
    sha256, size = sha256_of(path)
    inspected, variants = inspect_and_make_variants(path, max_pixels=max_pixels)
    return Processed(sha256, size, inspected, variants, fingerprint(variants.upright))
