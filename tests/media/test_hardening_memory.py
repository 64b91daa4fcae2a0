"""Memory per upload (issue 7): a picture is never held at full size in a wider mode, and no more pictures
are decoded at once than the settings allow.

The review's case: a 12 KB 1-bit PNG of 10000×9900 (just under the 100 MP limit) was decoded, converted to
full-size RGB and only then reduced: ~480 MB per upload, two at a time.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from services.media.imaging import images as imaging
from services.media.imaging import pipeline
from tests.media.api import VILLAGE, upload
from tests.media.images import jpeg

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def one_bit_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit greyscale PNG: ~12 KB for 10000×9900."""
    row = b"\0" + bytes((width + 7) // 8)  # filter byte, then packed bits
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(row * height, 9))
        + _chunk(b"IEND", b"")
    )


# ---- the process's peak memory, from /proc ----


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


@pytest.fixture
def peak_growth_mb() -> Callable[[], float]:
    """How far this process's resident peak (VmHWM) rose above its resident size at the start of the test."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS now (Linux 4.0+)
    except OSError:
        pytest.skip("the resident peak cannot be reset here (/proc/self/clear_refs)")
    start = _status_kb("VmRSS")
    return lambda: (_status_kb("VmHWM") - start) / 1024


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
async def test_four_one_bit_png_bombs_at_once_stay_far_below_full_size_rgb(
    client: httpx.AsyncClient, auth: Auth, peak_growth_mb: Callable[[], float]
) -> None:
    village = auth("village", VILLAGE)
    bomb = one_bit_png(10_000, 9_900)
    assert len(bomb) < 20_000

    answers = await asyncio.gather(
        *(upload(client, village, bomb, filename=f"bomb{i}.png", content_type="image/png") for i in range(4))
    )

    for r in answers:
        assert r.status_code == 201, r.text
        assert (r.json()["width"], r.json()["height"]) == (10_000, 9_900)
    # Before: each decode held the 99 MB 1-bit picture, its RGB copy (~400 MB as Pillow lays RGB out) and
    # more, two at a time: ~1 GB above the start (1018 MB measured). Now the 1-bit picture and 4 MB strips,
    # ~100 MB a decode: ~270 MB measured, allocator overhead of the worker threads included.
    grown = peak_growth_mb()
    assert grown < 500, f"the resident peak rose {grown:.0f} MB"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
@pytest.mark.parametrize("overrides", [{"max_concurrent_decodes": 1}], indirect=True)
async def test_no_more_pictures_are_decoded_at_once_than_max_concurrent_decodes(
    client: httpx.AsyncClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    real = pipeline.process

    def counted(path: Path, *, max_pixels: int) -> pipeline.Processed:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)  # long enough for the others to start, were they allowed to
            return real(path, max_pixels=max_pixels)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(pipeline, "process", counted)  # the intake imports it from there when it decodes
    village = auth("village", VILLAGE)

    answers = await asyncio.gather(*(upload(client, village, jpeg(320, 240, seed=s)) for s in range(4)))

    assert [r.status_code for r in answers] == [201] * 4
    assert most == 1


# ---- the image core: strips give exactly the whole-picture result ----


def _whole_then_reduced(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """What the service did before: the whole picture converted, then box-reduced."""
    factor = min(img.width // target[0], img.height // target[1])
    converted = imaging._to_rgb(img)
    return converted.reduce(factor) if factor >= 2 else converted


def _picture(mode: str, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(7)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.uint16))
    base = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    if mode == "P+transparency":
        img = base.convert("RGB").convert("P")
        img.info["transparency"] = 3
        return img
    return base.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "P", "P+transparency", "LA", "RGB", "RGBA", "CMYK", "I;16"])
@pytest.mark.parametrize("size", [(5003, 3307), (3201, 9999), (4000, 3000), (1700, 1200)])
def test_reducing_in_strips_gives_exactly_the_whole_picture_result(mode: str, size: tuple[int, int]) -> None:
    img = _picture(mode, *size)
    target = imaging._fit(img.size, imaging.DISPLAY_EDGE)

    strips = imaging._reduced_rgb(img, target)
    whole = _whole_then_reduced(img, target)

    assert (strips.mode, strips.size) == (whole.mode, whole.size)
    assert np.array_equal(np.asarray(strips), np.asarray(whole))


def test_a_one_bit_bomb_is_decoded_in_its_own_mode_and_reduced(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(one_bit_png(10_000, 9_900))
    converted: list[tuple[str, tuple[int, int]]] = []
    real = imaging._to_rgb

    def spy(img: Image.Image) -> Image.Image:
        converted.append((img.mode, img.size))
        return real(img)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imaging, "_to_rgb", spy)
        inspected, variants = imaging.inspect_and_make_variants(path, max_pixels=100_000_000)

    assert (inspected.width, inspected.height) == (10_000, 9_900)
    assert variants.display_size == (1600, 1584)
    assert converted and all(mode == "1" for mode, _ in converted)
    # No conversion ever saw more than a strip of the picture.
    assert max(w * h for _, (w, h) in converted) <= 4 * 1024 * 1024
