"""The reuse detector on its own: every kind of reuse is found by the band lookup and confirmed, different
photos (even alike ones) are not, and the hash and band arithmetic holds for any 64-bit value.

Scenes come from tests/media/photos.py; fingerprints are cached per module so each picture is made and
fingerprinted once.
"""

from __future__ import annotations

import functools
import itertools
import random

import imagehash
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from services.media.reuse import (
    CANDIDATE_MAX_DISTANCE,
    PROBE_RADIUS,
    Fingerprint,
    band_keys,
    candidate_distance,
    confirm,
    fingerprint,
    from_signed,
    hamming,
    lookup_distance,
    probe_guarantee,
    probe_keys,
    to_signed,
    trim_box,
)
from services.media.reuse.hashes import dct_hash
from services.media.settings import MediaSettings
from tests.media import photos

ORIGINAL = 11
INT64 = (-(2**63), 2**63 - 1)
u64 = st.integers(min_value=0, max_value=2**64 - 1)


@functools.cache
def _original() -> Image.Image:
    return photos.camera(ORIGINAL)


@functools.cache
def _stored() -> Fingerprint:
    return fingerprint(_original())


@functools.cache
def _reused(kind: str) -> Fingerprint:
    return fingerprint(photos.REUSE_KINDS[kind](_original()))


def _band_lookup_finds(new: Fingerprint, stored: Fingerprint) -> bool:
    """What the database does: probe the band index with the query hashes, keep hashes within the bound."""
    return lookup_distance(new, stored.index_hashes) <= CANDIDATE_MAX_DISTANCE


@pytest.mark.parametrize("kind", list(photos.REUSE_KINDS))
def test_each_kind_of_reuse_is_found_by_the_band_lookup_and_confirmed(kind: str) -> None:
    new, old = _reused(kind), _stored()

    distance = candidate_distance(new, old.index_hashes)
    assert distance <= CANDIDATE_MAX_DISTANCE
    assert _band_lookup_finds(new, old)
    match = confirm(new, Fingerprint(index_hashes=(), query_hashes=(), features=old.features))
    assert match is not None, kind
    assert match.mirrored is ("mirror" in kind)
    assert 0.5 <= match.score <= 1
    assert match.inliers >= 20 and match.correlation >= 0.7


@pytest.mark.parametrize(
    "kind", ["crop_right_20", "crop_edges_10", "screenshot", "rotate_-5_crop", "wechat_mirror"]
)
def test_reuse_is_also_found_when_the_altered_copy_was_stored_first(kind: str) -> None:
    altered, original = _reused(kind), _stored()

    assert candidate_distance(original, altered.index_hashes) <= CANDIDATE_MAX_DISTANCE
    assert _band_lookup_finds(original, altered)
    match = confirm(original, altered)
    assert match is not None
    assert match.mirrored is ("mirror" in kind)


def _honest_sets() -> dict[str, list[Image.Image]]:
    """Groups of different photographs that must never be taken for one another."""
    size = (1024, 768)
    alike = [photos.scene(300 + i, size, style=photos.style_of(77 + i // 3)) for i in range(9)]
    signs = [
        photos.with_sign(photos.scene(400 + i, size), 5 + i // 2, place_seed=i, fraction=0.3)
        for i in range(6)
    ]
    return {
        "distinct": [photos.scene(200 + i, size) for i in range(12)],
        "same kind of place": alike,  # three families of three: palette, horizon, kinds of objects
        "same printed sign": signs,  # three pairs sharing a sign on 30 % of the picture
        "same place photographed again": [photos.scene(500, size), photos.reshot(500, size)],
    }


@functools.cache
def _honest() -> list[tuple[str, int, Fingerprint]]:
    return [
        (group, i // 3 if group == "same kind of place" else i // 2, fingerprint(photos.jpeg(img, 90)))
        for group, images in _honest_sets().items()
        for i, img in enumerate(images)
    ]


@pytest.mark.slow
def test_different_photos_are_never_candidates_or_confirmed() -> None:
    honest = _honest()
    fps = [fp for _, _, fp in honest]
    distances = {
        (a, b): candidate_distance(fps[a], fps[b].index_hashes)
        for a, b in itertools.permutations(range(len(fps)), 2)
    }
    # Nearly all pairs are cut at the hash stage; whatever gets through must fail the strict check.
    candidates = [pair for pair, d in distances.items() if d <= CANDIDATE_MAX_DISTANCE]
    assert len(candidates) <= 0.01 * len(distances)
    look_alike = [
        (a, b)
        for (a, (group_a, family_a, _)), (b, (group_b, family_b, _)) in itertools.permutations(
            enumerate(honest), 2
        )
        if group_a == group_b != "distinct" and family_a == family_b
    ]
    sample = random.Random(3).sample(sorted(distances), 40)
    checked = set(candidates) | set(look_alike) | set(sample)
    accused = [
        (honest[a][0], honest[b][0]) for a, b in sorted(checked) if confirm(fps[a], fps[b]) is not None
    ]
    assert accused == []
    assert len(look_alike) == 9 * 2 + 3 * 2 + 2  # every alike pair was checked, both ways


def test_honest_photo_is_found_and_confirmed_against_itself_re_encoded() -> None:
    # The negative test above would pass with a detector that never matches: this is its control.
    img = photos.scene(200, (1024, 768))
    match = confirm(fingerprint(photos.jpeg(img, 70)), fingerprint(photos.jpeg(img, 90)))
    assert match is not None and match.score > 0.9


def test_fingerprint_is_deterministic_and_its_hashes_fit_a_bigint() -> None:
    again = fingerprint(_original().copy())
    assert again == _stored()
    fp = _stored()
    assert all(INT64[0] <= h <= INT64[1] for h in fp.index_hashes + fp.query_hashes)
    assert set(fp.index_hashes) <= set(fp.query_hashes)
    assert 1 <= len(fp.index_hashes) <= 8 and len(fp.query_hashes) <= 96


@pytest.mark.parametrize("size", [(1600, 1200), (1200, 1600), (400, 300), (2340, 1080)])
def test_features_blob_stays_small_for_any_picture_size(size: tuple[int, int]) -> None:
    fp = fingerprint(photos.scene(ORIGINAL, size))
    assert 10_000 < len(fp.features) <= 24_000
    assert len(fp.mirror_features) <= 24_000


def test_a_flat_picture_has_a_fingerprint_that_confirms_nothing() -> None:
    flat = fingerprint(Image.new("RGB", (800, 600), (128, 128, 128)))
    assert flat.index_hashes
    assert confirm(flat, _stored()) is None
    assert confirm(_stored(), flat) is None


def test_confirm_refuses_a_blob_that_is_not_a_features_blob() -> None:
    with pytest.raises(ValueError, match="features blob"):
        confirm(_stored(), Fingerprint(index_hashes=(), query_hashes=(), features=b"\x89PNG\r\n\x1a\n"))
    truncated = _stored().features[:-7]
    with pytest.raises(ValueError, match="features blob"):
        confirm(_stored(), Fingerprint(index_hashes=(), query_hashes=(), features=truncated))


# ---- border trimming --------------------------------------------------------------------------------


def test_screenshot_bars_with_chrome_are_trimmed_to_the_picture() -> None:
    shot = photos.screenshot(_original(), chrome=True, dark=False)  # picture rows 765..1575 of 2340
    left, top, right, bottom = trim_box(shot)
    assert (left, right) == (0, 1080)
    assert 765 <= top <= 775 and 1565 <= bottom <= 1575


def test_a_wide_picture_in_a_phone_screenshot_is_trimmed_though_it_fills_a_fifth_of_the_height() -> None:
    wide = photos.scene(5, (1600, 800))  # 2:1, shown full width: 540 of 2340 rows
    shot = photos.screenshot(wide, chrome=True, dark=True)
    left, top, right, bottom = trim_box(shot)
    assert (left, right) == (0, 1080)
    assert 900 <= top <= 910 and 1430 <= bottom <= 1440


def test_letterboxed_portrait_picture_is_trimmed_on_every_side() -> None:
    portrait = photos.scene(12, (500, 1200))
    shot = photos.wechat(photos.screenshot(portrait, chrome=False))
    left, top, right, bottom = trim_box(shot)
    w, h = shot.size
    assert left > 0.1 * w and right < 0.9 * w and top > 0.05 * h and bottom < 0.95 * h
    assert abs((right - left) / (bottom - top) - 500 / 1200) < 0.03


@pytest.mark.parametrize("seed", [3, 7, 16])  # style families with an overcast, almost flat sky
def test_photos_with_a_smooth_sky_are_not_trimmed(seed: int) -> None:
    assert photos.style_of(seed).flat_sky
    for img in (photos.camera(seed), photos.brightness(photos.camera(seed), 1.15)):
        assert trim_box(img) == (0, 0, *img.size)


# ---- hashes and band keys ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_window_hash_is_imagehashs_phash() -> None:
    """dct_hash is the perceptual hash of imagehash (DCT of a 32x32 grey copy, 8x8 lowest frequencies
    against their median), computed with OpenCV; only the resize filter differs."""
    distances = []
    for seed in range(8):
        grey = photos.camera(seed).convert("L")
        ours = from_signed(dct_hash(np.asarray(grey, dtype=np.float32)))
        distances.append(hamming(ours, int(str(imagehash.phash(grey)), 16)))
    assert max(distances) <= 4
    assert sum(distances) <= 8


@pytest.mark.parametrize("radius", [0, 1])
@given(h=u64, flips=st.sets(st.integers(min_value=0, max_value=63), max_size=7))
def test_probe_keys_reach_every_hash_within_the_guarantee(radius: int, h: int, flips: set[int]) -> None:
    flips = set(sorted(flips)[: probe_guarantee(radius)])
    g = h
    for bit in flips:
        g ^= 1 << bit
    assert hamming(h, g) == len(flips)
    assert set(probe_keys(to_signed(h), radius)) & set(band_keys(to_signed(g)))


@pytest.mark.parametrize("radius", [0, 1])
@given(
    queries=st.lists(u64, min_size=1, max_size=8),
    stored=st.lists(u64, min_size=1, max_size=6),
    flips=st.lists(st.integers(min_value=0, max_value=63), max_size=9),
)
def test_the_band_lookup_sees_no_nearer_than_the_full_comparison_and_misses_nothing_within_its_guarantee(
    radius: int, queries: list[int], stored: list[int], flips: list[int]
) -> None:
    near = stored[0]
    for bit in flips:
        near ^= 1 << bit
    new = Fingerprint(index_hashes=(), query_hashes=(*map(to_signed, queries), to_signed(near)), features=b"")
    stored_signed = [to_signed(s) for s in stored]

    full, looked_up = candidate_distance(new, stored_signed), lookup_distance(new, stored_signed, radius)
    assert looked_up >= full
    if full <= probe_guarantee(radius):
        assert looked_up == full


def test_the_service_probes_with_the_radius_the_detector_was_measured_with() -> None:
    assert MediaSettings(environment="test").reuse_probe_radius == PROBE_RADIUS


def test_the_guarantee_is_tight() -> None:
    """Two flipped bits in each band escape a radius-1 probe: 8 bits, one past its guarantee of 7."""
    h = 0
    g = sum(0b11 << (16 * band) for band in range(4))
    assert hamming(h, g) == probe_guarantee(1) + 1
    assert not set(probe_keys(h, 1)) & set(band_keys(g))
    one_per_band = sum(1 << (16 * band) for band in range(4))
    assert hamming(h, one_per_band) == probe_guarantee(0) + 1
    assert not set(probe_keys(h, 0)) & set(band_keys(one_per_band))


@given(u64)
def test_probe_keys_are_the_band_keys_and_their_one_bit_neighbours(h: int) -> None:
    keys = probe_keys(h, 1)
    assert len(keys) == len(set(keys)) == 4 * 17
    assert set(band_keys(h)) <= set(keys)
    assert probe_keys(h, 0) == band_keys(h)
    assert sorted(band for band, _ in band_keys(h)) == [0, 1, 2, 3]
    assert all(0 <= value < 2**16 for _, value in keys)


@given(u64, u64)
def test_hamming_is_symmetric_and_zero_only_for_equal_patterns(a: int, b: int) -> None:
    assert hamming(a, b) == hamming(b, a) == hamming(to_signed(a), b) == hamming(a, to_signed(b))
    assert (hamming(a, b) == 0) is (a == b)
    assert 0 <= hamming(a, b) <= 64


@given(u64)
def test_signed_int64_round_trip(h: int) -> None:
    signed = to_signed(h)
    assert INT64[0] <= signed <= INT64[1]
    assert from_signed(signed) == h
    assert to_signed(signed) == signed
    assert band_keys(signed) == band_keys(h)
    assert np.array([signed], dtype=np.int64).view(np.uint64)[0] == h
