"""The failed-login throttle: a sliding window of failures per key, on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.issues.auth.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(max_failures: int = 5, window: float = 900) -> tuple[FailureThrottle, Clock]:
    clock = Clock()
    return FailureThrottle(max_failures, window, clock=clock), clock


def test_fewer_failures_than_the_limit_do_not_block() -> None:
    t, _ = throttle()
    for _ in range(4):
        t.fail("account:officer")
    assert t.retry_after("account:officer") == 0


def test_the_limit_blocks_until_the_oldest_failure_leaves_the_window() -> None:
    t, clock = throttle()
    for _ in range(5):
        t.fail("account:officer")
        clock.now += 10  # failures at 1000, 1010, ..., 1040
    assert clock.now == 1050
    assert t.retry_after("account:officer") == 851  # 1000 + 900 - 1050, rounded up
    clock.now = 1899.5
    assert t.retry_after("account:officer") == 1
    clock.now = 1900
    assert t.retry_after("account:officer") == 0


def test_keys_are_counted_apart_and_the_longest_wait_wins() -> None:
    t, clock = throttle(max_failures=2, window=100)
    t.fail("account:a", "addr:1")
    clock.now += 50
    t.fail("account:a", "addr:2")
    assert t.retry_after("account:a") == 101 - 50
    assert t.retry_after("addr:1") == 0 and t.retry_after("addr:2") == 0
    t.fail("addr:3")
    t.fail("addr:3")
    assert t.retry_after("account:b", "addr:3") == 101
    assert t.retry_after("account:a", "addr:3") == 101
    assert t.retry_after("account:b", "addr:4") == 0


def test_success_clears_only_its_own_key() -> None:
    t, _ = throttle(max_failures=2)
    t.fail("account:a", "addr:1")
    t.fail("account:a", "addr:1")
    t.succeed("account:a")
    assert t.retry_after("account:a") == 0
    assert t.retry_after("addr:1") > 0


def test_old_failures_are_forgotten() -> None:
    t, clock = throttle(max_failures=3, window=60)
    t.fail("k")
    t.fail("k")
    clock.now += 61
    t.fail("k")
    t.fail("k")
    assert t.retry_after("k") == 0
    t.fail("k")
    assert t.retry_after("k") == 61


def test_a_key_that_has_gone_quiet_is_dropped_from_memory() -> None:
    t, clock = throttle(max_failures=3, window=60)
    for n in range(100):
        t.fail(f"account:guess{n}")
    clock.now += 61
    for n in range(100):
        assert t.retry_after(f"account:guess{n}") == 0
    assert t._failures == {}


# Whole seconds: with arbitrary floats, `a - b < w` and `b + w - a > 0` can disagree in the last bit.
@given(
    st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=0, max_value=3000),
)
def test_blocked_exactly_when_the_window_holds_the_limit(
    gaps: list[int], max_failures: int, window: int, later: int
) -> None:
    t, clock = throttle(max_failures, window)
    times = []
    for gap in gaps:
        clock.now += gap
        times.append(clock.now)
        t.fail("k")
    clock.now += later
    in_window = [x for x in times if clock.now - x < window]
    wait = t.retry_after("k")
    if len(in_window) >= max_failures:
        oldest_that_counts = in_window[-max_failures]
        assert wait > 0
        assert wait - 1 <= oldest_that_counts + window - clock.now <= wait
    else:
        assert wait == 0


def test_each_kind_of_key_has_its_own_limit() -> None:
    clock = Clock()
    t = FailureThrottle(5, 900, clock=clock, limits={"addr": 30})
    for n in range(29):
        t.fail(f"account:user{n % 6}", "addr:10.0.0.1")
    assert t.retry_after("addr:10.0.0.1") == 0
    assert t.retry_after("account:user0") > 0  # 5 failures of the 29
    t.fail("account:other", "addr:10.0.0.1")
    assert t.retry_after("addr:10.0.0.1") > 0


def test_memory_is_bounded_by_forgetting_the_keys_longest_untouched() -> None:
    clock = Clock()
    t = FailureThrottle(2, 900, clock=clock, max_keys=100)
    t.fail("account:target")
    t.fail("account:target")
    for n in range(99):
        t.fail(f"addr:10.0.{n // 256}.{n % 256}")
    assert len(t) == 100
    assert t.retry_after("account:target") > 0
    t.fail("addr:spray")  # one key too many: the oldest goes
    assert len(t) == 100
    assert t.retry_after("account:target") == 0
    assert t.retry_after("addr:spray") == 0  # one failure of two allowed


@given(st.lists(st.sampled_from(["account:a", "account:b", "addr:x"]), max_size=200))
def test_a_key_never_holds_more_failures_than_its_limit(keys: list[str]) -> None:
    clock = Clock()
    t = FailureThrottle(3, 900, clock=clock, limits={"addr": 7})
    for key in keys:
        t.fail(key)
        clock.now += 1
    for key, entries in t._failures.items():
        assert len(entries) <= t.limit_for(key)
