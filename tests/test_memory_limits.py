"""The in-process windows and counters behind ``limits.storage = memory://``, on a fake clock:
the moving minute of the ``limits`` library (remaining, reset, sliding), and expiring counters."""

from __future__ import annotations

import pytest

from gateway.admission import memory as memory_limits
from gateway.admission.memory import MemoryWindows, is_memory

pytestmark = pytest.mark.unit


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(memory_limits, "time", fake)
    return fake


def test_moving_minute_lets_exactly_the_limit_through_and_slides(clock: FakeTime) -> None:
    windows = MemoryWindows()
    start = clock.now
    answers = []
    for _ in range(5):
        answers.append(windows.hit_minute("u:a", 3))
        clock.now += 10
    assert [allowed for allowed, _, _ in answers] == [True, True, True, False, False]
    assert [remaining for _, remaining, _ in answers] == [2, 1, 0, 0, 0]
    assert {reset for _, _, reset in answers} == {start + 60}  # the oldest hit + 60 s
    # Another scope, or the same scope with another limit, is a window of its own.
    assert windows.hit_minute("u:b", 3)[0] and windows.hit_minute("u:a", 10)[0]
    clock.now = start + 60.5  # the first hit has left the window: one more fits
    allowed, remaining, reset = windows.hit_minute("u:a", 3)
    assert (allowed, remaining, reset) == (True, 0, start + 10 + 60)
    assert not windows.hit_minute("u:a", 3)[0]


def test_counters_add_roll_back_and_expire(clock: FakeTime) -> None:
    windows = MemoryWindows()
    assert windows.add("rpd:2026-11-23:u:a", 1, 100) == 1
    assert windows.add("rpd:2026-11-23:u:a", 5, 100) == 6
    assert windows.add("rpd:2026-11-23:u:a", -5, 100) == 1
    assert windows.get("rpd:2026-11-23:u:a") == 1 and windows.get("other") == 0
    clock.now += 101
    assert windows.get("rpd:2026-11-23:u:a") == 0
    assert windows.add("rpd:2026-11-23:u:a", 2, 100) == 2  # an expired counter starts over


def test_stale_entries_are_swept(clock: FakeTime) -> None:
    windows = MemoryWindows()
    windows.hit_minute("u:gone", 5)
    windows.add("tpd:gone", 10, 30)
    clock.now += 120
    windows.hit_minute("u:here", 5)  # any call sweeps, at most once a minute
    assert list(windows._windows) == [("u:here", 5)]
    assert "tpd:gone" not in windows._counters and "tpd:gone" not in windows._expiry


def test_memory_uris() -> None:
    assert is_memory("memory://") and is_memory("async+memory://")
    assert not is_memory("redis://127.0.0.1:6379") and not is_memory("async+redis://x")
