"""What a service read from its own database a moment ago, kept for a few seconds.

For reference data that every request of one kind reads and that an office changes a few times a year
(the issues service's categories and working calendar): a report then reads it from memory instead of
sending a statement for it. A change made through this process clears its cache at once; other replicas
see it when their entries expire (`seconds`, a setting). Zero seconds keeps nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.db import after_commit

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A small map whose entries live `seconds` from the moment they were read."""

    def __init__(
        self, seconds: float, *, limit: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.limit = limit
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._generation = 0  # a read that started before a clear() is not kept

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The value kept for `key` if it is recent enough, else `load()`'s (kept for next time)."""
        now = self._clock()
        kept = self._entries.get(key)
        if kept is not None and now < kept[0]:
            return kept[1]
        generation = self._generation
        value = await load()
        if self.seconds > 0 and generation == self._generation:
            if len(self._entries) >= self.limit:
                self._entries.clear()
            self._entries[key] = (now + self.seconds, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1

    def clear_after_commit(self, session: AsyncSession) -> None:
        """Forget everything once `session` has committed the change it carries (a read in between is not kept)."""

        async def clear() -> None:
            self.clear()

        after_commit(session, clear)
