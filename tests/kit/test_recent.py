"""`Recent`: what a service read a moment ago, kept for a few seconds, forgotten on a change."""

from __future__ import annotations

import asyncio

from services.kit.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """The database stand-in: counts the reads."""

    def __init__(self, value: str) -> None:
        self.value, self.reads = value, 0

    async def read(self) -> str:
        self.reads += 1
        return self.value


async def test_a_value_is_read_once_while_it_is_recent_and_again_once_it_is_not() -> None:
    clock, source = Clock(), Source("生活垃圾")
    recent: Recent[str, str] = Recent(30, clock=clock)
    assert [await recent.get("k", source.read) for _ in range(3)] == ["生活垃圾"] * 3
    assert source.reads == 1
    clock.now += 29.9
    source.value = "生活垃圾（改）"
    assert await recent.get("k", source.read) == "生活垃圾"  # another replica's change: not yet
    clock.now += 0.2
    assert await recent.get("k", source.read) == "生活垃圾（改）"
    assert source.reads == 2


async def test_keys_are_kept_apart_and_clear_forgets_them_all() -> None:
    recent: Recent[int, str] = Recent(30, clock=Clock())
    a, b = Source("a"), Source("b")
    assert (await recent.get(1, a.read), await recent.get(2, b.read)) == ("a", "b")
    recent.clear()
    await recent.get(1, a.read)
    await recent.get(2, b.read)
    assert (a.reads, b.reads) == (2, 2)


async def test_zero_seconds_keeps_nothing() -> None:
    recent: Recent[str, str] = Recent(0, clock=Clock())
    source = Source("x")
    for _ in range(3):
        await recent.get("k", source.read)
    assert source.reads == 3


async def test_a_read_that_started_before_a_change_is_not_kept() -> None:
    # A report reads the category while the office's change commits: what it read may be the old value,
    # and must not be kept for the next 30 seconds.
    recent: Recent[str, str] = Recent(30, clock=Clock())
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_old_read() -> str:
        started.set()
        await release.wait()
        return "old"

    reading = asyncio.create_task(recent.get("k", slow_old_read))
    await started.wait()
    recent.clear()  # the change has committed
    release.set()
    assert await reading == "old"
    fresh = Source("new")
    assert await recent.get("k", fresh.read) == "new" and fresh.reads == 1


async def test_it_stays_small() -> None:
    recent: Recent[int, int] = Recent(30, limit=4, clock=Clock())
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        return reads

    for key in range(10):
        await recent.get(key, read)
    assert len(recent._entries) <= 4
