"""Reuse of smooth pictures (issue 10): a sky, a wall, a blurred shot has too few corners for the keypoint
path, so its copies are confirmed by the dense path (reuse/dense.py); two different smooth pictures of one
kind (two skies of one palette, two walls of one paint) are not.

Pictures are drawn here, small (640x480), the way bench/reuse_set.py draws its smooth classes.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from services.media.reuse import (
    CANDIDATE_MAX_DISTANCE,
    Fingerprint,
    confirm,
    dense,
    fingerprint,
    lookup_distance,
)
from services.media.reuse import features as reuse_features
from tests.media import photos

W, H = 640, 480


def _field(rng: np.random.Generator, cells: int) -> np.ndarray:
    grid = rng.normal(0, 1, (max(2, round(cells * H / W)), cells)).astype(np.float32)
    return np.asarray(cv2.resize(grid, (W, H), interpolation=cv2.INTER_CUBIC), dtype=np.float32)


def _finish(a: np.ndarray, rng: np.random.Generator) -> Image.Image:
    a = a + rng.normal(0, 1.5, a.shape).astype(np.float32)
    return photos.jpeg(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), 92)


@functools.cache
def sky(seed: int, palette: int = 0) -> Image.Image:
    """A clear sky with faint clouds; `palette` fixes the colours, `seed` the clouds."""
    prng, rng = np.random.default_rng([palette, 1]), np.random.default_rng([seed, 2])
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    top, bottom = prng.uniform([40, 90, 160], [110, 150, 230]), prng.uniform([170, 190, 210], [225, 230, 250])
    clouds = np.clip(_field(rng, 6) + 0.5 * _field(rng, 14), 0, None)[:, :, None]
    return _finish(top * (1 - y) + bottom * y + 14 * clouds, rng)


@functools.cache
def wall(seed: int, paint: int = 0) -> Image.Image:
    """Plain paint under uneven light with faint plaster grain; `paint` fixes the colour."""
    prng, rng = np.random.default_rng([paint, 3]), np.random.default_rng([seed, 4])
    x = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    colour = prng.uniform([190, 185, 175], [235, 230, 225])
    light = 1 + 0.12 * (x - float(rng.uniform(0.2, 0.8)))
    grain = 2.5 * _field(rng, 120)[:, :, None] + 3.0 * _field(rng, 25)[:, :, None]
    return _finish(colour * light + grain, rng)


@functools.cache
def stripes(seed: int, family: int = 0) -> Image.Image:
    """Soft stripes with faint blotches; `family` fixes colours, period and angle (within a few percent
    and degrees), `seed` the phase and the blotches: look-alikes that any shift and scale lines up."""
    frng, rng = np.random.default_rng([family, 5]), np.random.default_rng([seed, 6])
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    c1, c2 = frng.uniform(60, 200, 3), frng.uniform(60, 200, 3)
    period = float(frng.uniform(0.08, 0.25)) * float(rng.uniform(0.85, 1.15))
    angle = float(frng.uniform(0, math.pi)) + float(rng.normal(0, 0.2))
    u = x * math.cos(angle) + y * math.sin(angle) * H / W
    t = 0.5 + 0.5 * np.sin(2 * math.pi * u / period + float(rng.uniform(0, 2 * math.pi)))
    return _finish(c1 * (1 - t) + c2 * t + 3 * _field(rng, 10)[:, :, None], rng)


def _blurred(seed: int) -> Image.Image:
    """A camera scene out of focus."""
    a = np.asarray(photos.scene(seed, (W, H)), dtype=np.float32)
    return _finish(np.asarray(cv2.GaussianBlur(a, (0, 0), 10), dtype=np.float32), np.random.default_rng(seed))


@functools.cache
def _fp(name: str, seed: int) -> Fingerprint:
    return fingerprint({"sky": sky, "wall": wall, "blurred": _blurred, "stripes": stripes}[name](seed))


def _keypoints(fp: Fingerprint) -> int:
    return len(reuse_features.decode(fp.features).descriptors)


COPIES = {
    "q60": lambda im: photos.jpeg(im, 60),
    "wechat": photos.wechat,
    "half": lambda im: photos.jpeg(photos.resized(im, 0.5), 85),
    "crop5": lambda im: photos.jpeg(photos.crop_edges(im, 0.05), 90),
    "crop10-left": lambda im: photos.jpeg(photos.crop_side(im, "left", 0.10), 90),
    "brighter": lambda im: photos.jpeg(photos.brightness(im, 1.1), 90),
    "turn3": lambda im: photos.jpeg(photos.rotate(im, 3, fill=False), 90),
    "mirror": lambda im: photos.jpeg(photos.mirror(im), 90),
}


@pytest.mark.parametrize("kind", list(COPIES))
@pytest.mark.parametrize("name", ["sky", "wall", "blurred"])
def test_copies_of_a_smooth_picture_are_found_and_confirmed_without_corners(name: str, kind: str) -> None:
    stored = _fp(name, 1)
    original = {"sky": sky, "wall": wall, "blurred": _blurred}[name](1)
    new = fingerprint(COPIES[kind](original))
    assert lookup_distance(new, stored.index_hashes) <= CANDIDATE_MAX_DISTANCE
    match = confirm(new, stored)
    assert match is not None, f"{kind} of a {name} not confirmed"
    assert match.mirrored is (kind == "mirror")
    if _keypoints(stored) < reuse_features.MIN_INLIERS:
        assert match.dense  # the keypoint path could not have done it


def test_a_sky_and_a_wall_have_too_few_corners_for_the_keypoint_path() -> None:
    # What the dense path is for: without it none of the copies above would be confirmed.
    assert _keypoints(_fp("sky", 1)) < reuse_features.MIN_INLIERS
    assert _keypoints(_fp("wall", 1)) < reuse_features.MIN_INLIERS


@pytest.mark.parametrize(
    ("name", "a", "b"),
    [("sky", 1, 2), ("sky", 3, 4), ("wall", 1, 2), ("wall", 3, 4), ("blurred", 5, 6)],
)
def test_two_different_smooth_pictures_of_one_kind_are_never_confirmed(name: str, a: int, b: int) -> None:
    first, second = _fp(name, a), _fp(name, b)
    assert confirm(first, second) is None
    assert confirm(second, first) is None


@pytest.mark.parametrize("family", [0, 1, 2])
def test_periodic_look_alikes_are_kept_apart_by_the_dense_path_alone(family: int) -> None:
    # Two stripe patterns of one family line up under some shift and scale, their detail correlating
    # like a copy's; the smooth part of their difference does not vanish as a copy's does. Checked on
    # the thumbnails directly, whatever the hashes say, and for copies of either as the new photo.
    pictures = [stripes(seed, family) for seed in (1, 2, 3)]
    for i, first in enumerate(pictures):
        for j, second in enumerate(pictures):
            if i == j:
                continue
            stored = reuse_features.decode(fingerprint(second).features)
            for new_picture in (first, photos.wechat(first), photos.crop_edges(first, 0.05)):
                new = reuse_features.decode(fingerprint(new_picture).features)
                assert dense.match(new.thumb, stored.thumb, new.chroma, stored.chroma) is None


@pytest.mark.parametrize("kind", ["crop5", "crop10-left", "brighter", "turn3"])
def test_copies_of_a_stripe_pattern_are_confirmed(kind: str) -> None:
    original = stripes(1)
    match = confirm(fingerprint(COPIES[kind](original)), _fp("stripes", 1))
    assert match is not None


def test_a_sky_is_not_a_wall_and_a_smooth_picture_is_not_a_textured_one() -> None:
    textured = fingerprint(photos.camera(3, (W, H)))
    for one, other in [
        (_fp("sky", 1), _fp("wall", 1)),
        (_fp("wall", 1), textured),
        (textured, _fp("sky", 1)),
    ]:
        assert confirm(one, other) is None


def test_a_flawless_gradient_is_never_accused_there_is_nothing_to_tell_it_by() -> None:
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    plain = Image.fromarray(
        (np.array([60, 110, 200]) * (1 - y) + np.array([200, 215, 240]) * y).astype(np.uint8)
    )
    plain = Image.fromarray(np.broadcast_to(np.asarray(plain), (H, W, 3)).copy())
    stored = fingerprint(plain)
    assert confirm(fingerprint(photos.jpeg(plain, 80)), stored) is None


# ---- the blob -------------------------------------------------------------------------------------------


def test_a_smooth_pictures_blob_carries_its_colour_and_stays_within_a_textured_ones() -> None:
    smooth = reuse_features.decode(_fp("sky", 1).features)
    assert smooth.chroma is not None and max(smooth.chroma.shape[:2]) == reuse_features.CHROMA_EDGE
    textured = fingerprint(photos.camera(3, (1600, 1200)))
    assert len(textured.features) <= reuse_features._HEADER.size + 64 * 48 + reuse_features.MAX_FEATURES * 36
    assert len(_fp("sky", 1).features) < len(textured.features)


def test_a_blob_of_the_previous_version_is_still_read() -> None:
    # Photos stored before the chroma thumbnail: version 2, no colour; confirm() still works on them.
    textured = fingerprint(photos.camera(3, (W, H)))
    blob = bytearray(textured.features)
    assert blob[2] & 0x80 == 0  # no room for colour beside MAX_FEATURES keypoints
    blob[2] = 2
    old = Fingerprint(index_hashes=(), query_hashes=(), features=bytes(blob))
    assert reuse_features.decode(bytes(blob)).chroma is None
    assert confirm(fingerprint(photos.jpeg(photos.camera(3, (W, H)), 70)), old) is not None


def test_a_blob_claiming_colour_in_the_old_version_is_refused() -> None:
    blob = bytearray(_fp("sky", 1).features)
    blob[2] = 2 | 0x80
    with pytest.raises(ValueError, match="features blob"):
        reuse_features.decode(bytes(blob))


# ---- the pure parts of the dense path -------------------------------------------------------------------


@given(
    scale=st.floats(0.5, 2.0),
    degrees=st.floats(-30, 30),
    centre=st.tuples(st.floats(0, 64), st.floats(0, 64)),
)
def test_a_similarity_decomposes_into_its_scale_and_turn(
    scale: float, degrees: float, centre: tuple[float, float]
) -> None:
    m = dense._similarity(scale, degrees, centre, (31.5, 23.5))
    found_scale, found_degrees, anisotropy = dense._decompose(m)
    assert math.isclose(found_scale, scale, rel_tol=1e-4)
    assert math.isclose(found_degrees, degrees, abs_tol=1e-3)
    assert anisotropy < 1e-4
    # It maps the new picture's centre onto the old one's.
    mapped = m[:, :2] @ np.array(centre, np.float32) + m[:, 2]
    assert np.allclose(mapped, (31.5, 23.5), atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(0.85, 0.95),
    degrees=st.floats(-3, 3),
    dx=st.floats(-1, 1),
    dy=st.floats(-1, 1),
    gain=st.floats(0.85, 1.15),
)
def test_the_dense_path_confirms_a_crop_of_a_thumbnail_under_any_small_turn_and_gain(
    scale: float, degrees: float, dx: float, dy: float, gain: float
) -> None:
    old = reuse_features.decode(_fp("sky", 1).features).thumb
    oh, ow = old.shape
    m = dense._similarity(
        scale, degrees, ((ow - 1) / 2, (oh - 1) / 2), ((ow - 1) / 2 + dx, (oh - 1) / 2 + dy)
    )
    cut = cv2.warpAffine(
        old, m, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    new = np.clip(cut * gain, 0, 255).astype(np.float32)
    found, why = dense.assess(new, old, None, None)
    assert found is not None, why
    assert abs(found.rotation_deg - degrees) < 1.0
    assert abs(found.scale - scale) < 0.03


@given(st.integers(1, 4000), st.integers(1, 4000))
def test_the_chroma_thumbnail_keeps_the_proportions_within_its_edge(w: int, h: int) -> None:
    cw, ch = reuse_features._chroma_size(w, h)
    assert max(cw, ch) == reuse_features.CHROMA_EDGE
    assert 1 <= cw <= reuse_features.CHROMA_EDGE and 1 <= ch <= reuse_features.CHROMA_EDGE


def test_the_alignment_is_refined_on_thumbnails_of_different_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A copy cropped on one side has a thumbnail of other proportions than its original's; ECC must still
    # refine the grid's alignment there (it was once handed a mask of the wrong size and refused every such
    # pair, leaving a blurred picture's chained copy misaligned by a thumbnail pixel and refused).
    outcomes: list[str] = []
    real = cv2.findTransformECC

    def spy(*args: object) -> object:
        try:
            found = real(*args)  # type: ignore[call-overload]
        except cv2.error:
            outcomes.append("refused")
            raise
        outcomes.append("refined")
        return found

    monkeypatch.setattr(dense.cv2, "findTransformECC", spy)
    original = _blurred(7)
    copy = photos.wechat(photos.brightness(photos.crop_side(original, "bottom", 0.08), 1.1))
    new = reuse_features.decode(fingerprint(copy).features)
    old = reuse_features.decode(_fp("blurred", 7).features)
    assert new.thumb.shape != old.thumb.shape
    found, why = dense.assess(new.thumb, old.thumb, new.chroma, old.chroma)
    assert outcomes == ["refined"]
    assert found is not None, why
    assert abs(found.rotation_deg) < 0.5 and abs(found.scale - 1) < 0.02
