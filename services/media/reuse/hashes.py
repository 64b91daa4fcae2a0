"""64-bit perceptual hashes of picture windows, and the band keys that index them.

Each hash is a DCT hash (the signs of the 8x8 lowest frequencies of a 32x32 grey copy against their
median). One hash shifts by a dozen bits when the picture is cropped by 5 % or turned by 4 degrees, so a
photo is hashed in several windows: stored, the whole picture, its centre and four one-sided crops keeping
STORED_KEEP of a dimension; queried (for the new photo and its mirror image), the whole picture, centres
and one-sided crops at QUERY_KEEPS, and centres of the picture turned back by TURNS degrees. A crop of up
to 20 % of either photo (edges or one side) or a turn of 3-5 degrees then leaves some queried/stored pair
showing nearly the same view, within a few bits.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

BANDS = 4
BAND_BITS = 16
# The lookup probes each band of each query hash exactly (radius 0): 4 keys a hash, each fetching about
# 1/65,536 of the archive. Radius 1 (4 x 17 keys) would guarantee every hash within 7 bits, but fetches 17
# times the rows, and a reused picture has dozens of near query/stored pairs, one of which nearly always
# shares a whole band (bench/reuse_quality.py: the found rates per kind of reuse).
PROBE_RADIUS = 0


def probe_guarantee(radius: int) -> int:
    """Probing each band within `radius` bits finds every hash within this many bits (pigeonhole)."""
    return BANDS * (radius + 1) - 1


PROBE_GUARANTEE = probe_guarantee(PROBE_RADIUS)

STORED_KEEP = 0.8
QUERY_KEEPS = (0.8, 0.83, 0.86, 0.9, 0.93, 0.96)  # steps of 3-4 %: a hash shifts ~2 bits per 1 %
TURNS = (-5.0, -2.5, 2.5, 5.0)
TURN_KEEPS = (0.8, 0.87, 0.92)  # straightening 3-5 degrees keeps 0.90-0.94 of the picture
HASH_BASE = 256  # long edge of the grey picture the windows are cut from
HASH_SIZE = 32  # DCT input side; the hash keeps the 8x8 lowest frequencies

_MASK64 = (1 << 64) - 1

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the picture


def to_signed(h: int) -> int:
    """A 64-bit pattern as the signed int64 a BIGINT column holds (two's complement)."""
    h &= _MASK64
    return h - (1 << 64) if h >= 1 << 63 else h


def from_signed(h: int) -> int:
    """The unsigned 64-bit pattern of a signed (or unsigned) 64-bit value."""
    return h & _MASK64


def hamming(a: int, b: int) -> int:
    """Differing bits between two 64-bit patterns, given signed or unsigned."""
    return ((a ^ b) & _MASK64).bit_count()


def band_keys(h: int) -> list[tuple[int, int]]:
    """(band number 0..3, 16-bit value) of the four bands of `h`, most significant band first."""
    u = from_signed(h)
    return [(band, (u >> (BAND_BITS * (BANDS - 1 - band))) & 0xFFFF) for band in range(BANDS)]


def probe_keys(h: int, radius: int = 1) -> list[tuple[int, int]]:
    """Band keys of `h` and of every value within `radius` bits of each band: what to look up for `h`.

    Radius 0 gives the 4 band keys themselves, radius 1 4 x 17 keys; either finds every stored hash within
    `probe_guarantee(radius)` bits (3 and 7).
    """
    if radius < 0:
        raise ValueError("radius must be >= 0")
    keys: list[tuple[int, int]] = []
    for band, value in band_keys(h):
        values = {value}
        frontier = {value}
        for _ in range(radius):
            frontier = {v ^ (1 << bit) for v in frontier for bit in range(BAND_BITS)} - values
            values |= frontier
        keys.extend((band, v) for v in sorted(values))
    return keys


def dct_hash(grey: NDArray[np.float32]) -> int:
    """The 64-bit perceptual hash of a grey picture, as a signed int64."""
    small = cv2.resize(grey, (HASH_SIZE, HASH_SIZE), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    # Row-major bits, most significant first, as imagehash's phash orders them.
    return to_signed(int.from_bytes(np.packbits(low > np.median(low)).tobytes(), "big"))


def centre(keep: float) -> Box:
    """The middle of a picture keeping `keep` of each dimension."""
    margin = (1 - keep) / 2
    return (margin, margin, 1 - margin, 1 - margin)


def sides(keep: float) -> list[Box]:
    """Crops keeping `keep` of one dimension: the left part, the right part, the top part, the bottom part."""
    return [(0, 0, keep, 1), (1 - keep, 0, 1, 1), (0, 0, 1, keep), (0, 1 - keep, 1, 1)]


WHOLE: Box = (0.0, 0.0, 1.0, 1.0)
STORED_WINDOWS: tuple[Box, ...] = (WHOLE, centre(STORED_KEEP), *sides(STORED_KEEP))
QUERY_WINDOWS: tuple[Box, ...] = (
    WHOLE,
    *(centre(k) for k in QUERY_KEEPS),
    *(box for k in QUERY_KEEPS for box in sides(k)),
)


def cut(grey: NDArray[np.float32], box: Box) -> NDArray[np.float32]:
    h, w = grey.shape
    left, top, right, bottom = box
    window = grey[round(top * h) : round(bottom * h), round(left * w) : round(right * w)]
    return np.ascontiguousarray(window)


def _turned(grey: NDArray[np.float32], degrees: float) -> NDArray[np.float32]:
    h, w = grey.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    turned = cv2.warpAffine(grey, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return np.asarray(turned, dtype=np.float32)


def stored_hashes(grey: NDArray[np.float32]) -> list[int]:
    """Hashes of the STORED_WINDOWS of a trimmed grey picture (about HASH_BASE px)."""
    return [dct_hash(cut(grey, box)) for box in STORED_WINDOWS]


def query_hashes(grey: NDArray[np.float32]) -> list[int]:
    """Hashes of the QUERY_WINDOWS and turned centres of a trimmed grey picture and of its mirror image."""
    out: list[int] = []
    for view in (grey, np.ascontiguousarray(grey[:, ::-1])):
        out.extend(dct_hash(cut(view, box)) for box in QUERY_WINDOWS)
        for degrees in TURNS:
            turned = _turned(view, degrees)
            out.extend(dct_hash(cut(turned, centre(k))) for k in TURN_KEEPS)
    return out
