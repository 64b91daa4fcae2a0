"""A budget of memory for decoding pictures: every decode holds its estimated bytes until it is done.

A count of decodes at once (`MAX_CONCURRENT_DECODES`) bounds the CPU, not the memory: one 100 MP WebP
costs ~1.5 GB to decode, a phone's JPEG ~50 MB. So each decode first asks for what it will cost
(`images.decode_cost`, from the header alone) and waits until the budget has that much free; what it holds
is given back when it ends, however it ends. Waiters are served first come, first served, so a large
picture is not starved by a stream of small ones. A picture that would cost more than the whole budget is
never started (the intake refuses it). One budget per process, used from the event loop only.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["DecodeBudget", "give_back_freed_memory"]


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only
    return trim if callable(trim) else None


_TRIM = _malloc_trim()


def give_back_freed_memory() -> None:
    """Return freed heap memory to the system (glibc's `malloc_trim`; nothing elsewhere).

    A large decode's pixels are freed when it ends, but glibc keeps much of what was allocated on its heaps
    (Pillow allocates in 16 MB blocks, under glibc's grown mmap threshold): without this the process's
    resident size stays near its largest decode so far, and the next one adds to it.
    """
    if _TRIM is not None:
        _TRIM(0)


class DecodeBudget:
    def __init__(self, total: int) -> None:
        if total <= 0:
            raise ValueError("a decode budget must be positive")
        self.total = total
        self.free = total
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        """Hold `amount` bytes of the budget for the body of the `async with` (waiting for them first)."""
        if not 0 <= amount <= self.total:
            raise ValueError(f"{amount} bytes cannot be held within a budget of {self.total}")
        await self._acquire(amount)
        try:
            yield
        finally:
            self._release(amount)

    async def _acquire(self, amount: int) -> None:
        if not self._waiters and amount <= self.free:
            self.free -= amount
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (amount, granted)
        self._waiters.append(waiter)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(amount)  # granted just as it was cancelled: give it back
            else:
                self._waiters.remove(waiter)
                self._grant()  # a large waiter leaving may let smaller ones behind it start
            raise

    def _release(self, amount: int) -> None:
        self.free += amount
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.free:
            amount, granted = self._waiters.popleft()
            self.free -= amount
            granted.set_result(None)
