"""Failed-login throttling: a sliding window of failures per key (account and address, account, address).

Keys are `kind:value`; each kind has its own limit, so one address shared by a whole village (carrier NAT
is the rule on rural mobile networks) tolerates more failures than one account, and a kind may also ask
for growing delays between attempts before its hard limit (so nobody can lock an account by guessing at
it from elsewhere, yet guessing stays slow). Kept in the process's
memory, bounded in keys: behind several replicas each counts its own failures, which still bounds
guessing to replicas × limit per window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping


class FailureThrottle:
    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        limits: Mapping[str, int] | None = None,
        delays: Mapping[str, tuple[int, float]] | None = None,
        max_keys: int = 100_000,
    ) -> None:
        """`max_failures` for every kind of key not named in `limits`; at most `max_keys` keys remembered
        (the longest untouched are forgotten first)."""
        self.max_failures = max_failures
        self.limits = dict(limits or {})
        # kind → (failures after which each attempt waits, the longest wait): 1 s, 2 s, 4 s … up to it.
        self.delays = dict(delays or {})
        self.window = window_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def limit_for(self, key: str) -> int:
        return self.limits.get(key.partition(":")[0], self.max_failures)

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
            limit = self.limit_for(key)
            if len(entries) >= limit:
                wait = max(wait, entries[-limit] + self.window - self._clock())
            elif (delay := self.delays.get(key.partition(":")[0])) is not None and len(entries) >= delay[0]:
                pause = min(delay[1], 2.0 ** (len(entries) - delay[0]))
                wait = max(wait, entries[-1] + pause - self._clock())
        return int(wait) + 1 if wait > 0 else 0

    def fail(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            entries = self._recent(key)
            self._failures.pop(key, None)  # re-inserted last: the dict's order is least recently failed first
            entries.append(now)
            while len(entries) > self.limit_for(key):  # older ones no longer decide anything
                entries.popleft()
            self._failures[key] = entries
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]

    def succeed(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
