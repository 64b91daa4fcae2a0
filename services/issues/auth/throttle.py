"""Failed-login throttling: a sliding window of failures per key (username, client id, address).

Kept in the process's memory: behind several replicas each counts its own failures, which still bounds
guessing to replicas × limit per window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self, max_failures: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        entries = self._failures.get(key)
        if entries is None:
            return deque()
        while entries and now - entries[0] >= self.window:
            entries.popleft()
        if not entries:
            del self._failures[key]
        return entries

    def retry_after(self, *keys: str) -> int:
        """Seconds until every key may try again; 0 when none is blocked."""
        wait = 0.0
        for key in keys:
            entries = self._recent(key)
            if len(entries) >= self.max_failures:
                wait = max(wait, entries[-self.max_failures] + self.window - self._clock())
        return int(wait) + 1 if wait > 0 else 0

    def fail(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            self._recent(key)
            self._failures.setdefault(key, deque()).append(now)

    def succeed(self, key: str) -> None:
        self._failures.pop(key, None)
