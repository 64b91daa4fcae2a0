"""The memory budget for decoding (issue 7): each decode holds what it will cost, estimated from the header;
decodes wait for room, and a picture that would cost more than the whole budget is refused and not kept."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from services.media.imaging import pipeline
from services.media.imaging.budget import DecodeBudget
from services.media.imaging.images import DECODE_OVERHEAD_BYTES, ImageTooManyPixels, decode_cost
from services.media.photos.models import Photo
from tests.media.api import VILLAGE, upload
from tests.media.images import jpeg
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]
MiB = 1024 * 1024


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


def _encoded(mode: str, size: tuple[int, int], fmt: str, **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 128 if mode in ("L", "P") else (90, 120, 60, 255)[: len(mode)]).save(
        out, fmt, **save
    )
    return out.getvalue()


# ---- what a decode costs, from the header ----


@pytest.mark.parametrize(
    ("mode", "fmt", "per_pixel"),
    [("L", "PNG", 1), ("P", "PNG", 1), ("RGB", "PNG", 4), ("RGBA", "PNG", 4), ("RGB", "WEBP", 16)],
)
def test_a_whole_decode_costs_its_pixels_in_the_decoded_layout(
    tmp_path: Path, mode: str, fmt: str, per_pixel: int
) -> None:
    path = tmp_path / "p"
    path.write_bytes(_encoded(mode, (300, 200), fmt))
    assert decode_cost(path, max_pixels=10**8) == DECODE_OVERHEAD_BYTES + 300 * 200 * per_pixel


def test_a_jpeg_costs_what_it_decodes_at_its_dct_scale(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    path.write_bytes(_encoded("RGB", (6400, 4800), "JPEG", quality=50))
    # 1/4 scale (1600×1200) still covers the 1600 px display edge: a 16th of the pixels, 4 bytes each.
    assert decode_cost(path, max_pixels=10**8) == DECODE_OVERHEAD_BYTES + 1600 * 1200 * 4


def test_the_cost_is_read_without_decoding_a_picture_over_the_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    path.write_bytes(_encoded("L", (400, 300), "PNG"))
    with pytest.raises(ImageTooManyPixels):
        decode_cost(path, max_pixels=100_000)


# ---- the budget ----


@settings(max_examples=60, deadline=None)
@given(amounts=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=12))
def test_holders_never_exceed_the_budget_and_every_one_gets_its_turn(amounts: list[int]) -> None:
    async def run() -> tuple[int, list[int]]:
        budget = DecodeBudget(100)
        held, most, order = 0, 0, []

        async def decode(i: int, amount: int) -> None:
            nonlocal held, most
            async with budget.hold(amount):
                held += amount
                most = max(most, held)
                order.append(i)
                await asyncio.sleep(0)  # let the others try while this one holds its share
                held -= amount

        await asyncio.gather(*(decode(i, a) for i, a in enumerate(amounts)))
        assert budget.free == 100
        return most, order

    most, order = asyncio.run(run())
    assert most <= 100
    assert order == list(range(len(amounts)))  # first come, first served: nobody overtakes a large waiter


def test_a_waiter_that_gives_up_takes_nothing_and_lets_the_next_start() -> None:
    async def run() -> None:
        budget = DecodeBudget(100)
        started: list[str] = []

        async def take(name: str, amount: int, gate: asyncio.Event) -> None:
            async with budget.hold(amount):
                started.append(name)
                await gate.wait()

        gate = asyncio.Event()
        first = asyncio.create_task(take("first", 60, gate))
        await asyncio.sleep(0)
        large = asyncio.create_task(take("large", 80, gate))
        small = asyncio.create_task(take("small", 30, gate))
        await asyncio.sleep(0)
        assert started == ["first"]  # the small one waits behind the large one
        large.cancel()
        for _ in range(3):  # the cancellation is handled, then the small one is granted, then it runs
            await asyncio.sleep(0)
        assert started == ["first", "small"]  # the large one left: the small one fits beside the first
        gate.set()
        await asyncio.gather(first, small, large, return_exceptions=True)
        assert budget.free == 100

    asyncio.run(run())


def test_an_amount_beyond_the_budget_is_a_caller_error() -> None:
    async def run() -> None:
        async with DecodeBudget(100).hold(101):
            pass

    with pytest.raises(ValueError, match="cannot be held"):
        asyncio.run(run())


# ---- through the API ----

_BUDGET = 64 * MiB


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
@pytest.mark.parametrize("overrides", [{"decode_memory_bytes": _BUDGET}], indirect=True)
async def test_a_picture_costing_more_than_the_budget_is_refused_and_not_kept(
    client: httpx.AsyncClient, auth: Auth, count_rows: Any
) -> None:
    # A WebP is decoded whole at ~16 bytes a pixel: 1.1 MP takes the budget over 64 MiB.
    webp = _encoded("RGB", (1100, 1000), "WEBP", quality=50)
    r = await upload(client, auth("village", VILLAGE), webp, filename="big.webp", content_type="image/webp")
    problem = assert_problem(r, 422, "image_too_costly")
    assert problem["max_decode_bytes"] == _BUDGET and problem["decode_bytes"] > _BUDGET
    assert await count_rows(Photo) == 0
    # A phone's JPEG of the same size costs far less and passes.
    r = await upload(client, auth("village", VILLAGE), jpeg(1100, 1000))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
@pytest.mark.parametrize(
    "overrides", [{"decode_memory_bytes": _BUDGET, "max_concurrent_decodes": 4}], indirect=True
)
async def test_decodes_wait_for_room_in_the_budget(
    client: httpx.AsyncClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = most = 0
    lock = threading.Lock()
    real = pipeline.process

    def counted(path: Path, *, max_pixels: int) -> pipeline.Processed:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return real(path, max_pixels=max_pixels)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(pipeline, "process", counted)
    village = auth("village", VILLAGE)
    # Each costs the 48 MiB overhead and a little: two never fit in 64 MiB together, though four decodes
    # at once are allowed.
    answers = await asyncio.gather(*(upload(client, village, jpeg(320, 240, seed=s)) for s in range(4)))
    assert [r.status_code for r in answers] == [201] * 4
    assert most == 1
