"""The fetch guard (pure): starved windows raise the long-poll, then restart fetches; health relaxes it."""

from __future__ import annotations

import pytest

from stream_app.fetch_guard import Action, FetchGuard
from stream_app.stall import ProgressWatch


def feed(guard: FetchGuard, *, records: int, pending: int, seconds: float, now: float, step: float = 0.1):
    """Polls of ``step`` seconds each for ``seconds``; returns the verdicts and the clock after."""
    verdicts = []
    t = now
    for _ in range(round(seconds / step)):
        t += step
        v = guard.observe(records, step, pending, t)
        if v is not None:
            verdicts.append(v)
    return verdicts, t


def test_a_consumer_that_gets_records_is_left_alone() -> None:
    guard = FetchGuard(floor_ms=5, batch_max=500)
    verdicts, _ = feed(guard, records=50, pending=100, seconds=10, now=0)
    assert verdicts == [] and guard.wait_ms == 5 and guard.starved_s == 0


def test_an_idle_consumer_is_not_starved() -> None:
    guard = FetchGuard(floor_ms=5)
    verdicts, _ = feed(guard, records=0, pending=0, seconds=10, now=0)
    assert verdicts == [] and guard.wait_ms == 5


def test_records_pending_and_none_fetched_doubles_the_wait_up_to_the_cap_then_restarts_fetches() -> None:
    guard = FetchGuard(floor_ms=5, cap_ms=40, window_s=0.5, windows_to_act=2)
    verdicts, _ = feed(guard, records=0, pending=10_000, seconds=5, now=0)
    actions = [(v.action, v.wait_ms) for v in verdicts]
    assert actions[:3] == [(Action.RAISE_WAIT, 10), (Action.RAISE_WAIT, 20), (Action.RAISE_WAIT, 40)]
    assert actions[3:] and all(a == (Action.RESTART_FETCH, 40) for a in actions[3:])
    assert verdicts[0].pending == 10_000 and verdicts[0].starved_s == pytest.approx(1.0)
    assert guard.starved_s == pytest.approx(5.0)


def test_a_trickle_below_what_is_pending_is_starved_too() -> None:
    guard = FetchGuard(floor_ms=5, batch_max=500)
    verdicts, _ = feed(guard, records=2, pending=50_000, seconds=1.0, now=0)
    assert [v.action for v in verdicts] == [Action.RAISE_WAIT]


def test_one_starved_window_alone_does_nothing() -> None:
    """A record that lands at a window's last instant is pending but not yet fetched: not a stall."""
    guard = FetchGuard(floor_ms=5, window_s=0.5, windows_to_act=2)
    v1, t = feed(guard, records=0, pending=1, seconds=0.5, now=0)
    v2, _ = feed(guard, records=1, pending=0, seconds=0.5, now=t)
    assert v1 == v2 == [] and guard.wait_ms == 5 and guard.starved_s == 0


def test_time_not_spent_waiting_on_fetches_never_counts() -> None:
    """A batch stuck on Redis does not poll: no window closes, whatever the wall clock says."""
    guard = FetchGuard(floor_ms=5, window_s=0.5)
    assert guard.observe(0, 0.001, 10_000, now=100.0) is None
    assert guard.observe(0, 0.001, 10_000, now=10_000.0) is None
    assert guard.wait_ms == 5 and guard.starved_s == 0


def test_after_a_healthy_while_the_wait_relaxes_back_to_the_floor() -> None:
    guard = FetchGuard(floor_ms=5, cap_ms=1000, relax_after_s=60)
    raised, t = feed(guard, records=0, pending=10_000, seconds=2, now=0)
    assert guard.wait_ms == 20 and len(raised) == 2
    relaxed, t = feed(guard, records=500, pending=10, seconds=59, now=t, step=0.5)
    assert relaxed == []
    relaxed, t = feed(guard, records=500, pending=10, seconds=200, now=t, step=0.5)
    assert [(v.action, v.wait_ms) for v in relaxed] == [(Action.RELAX_WAIT, 10), (Action.RELAX_WAIT, 5)]
    assert guard.wait_ms == 5


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="floor_ms"):
        FetchGuard(floor_ms=10, cap_ms=5)


def test_window_due_tells_when_pending_is_read() -> None:
    guard = FetchGuard(floor_ms=5, window_s=0.5)
    assert not guard.window_due(0.2)
    guard.observe(0, 0.4, None, 1.0)
    assert guard.window_due(0.2)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_watch_counts_only_time_with_records_pending_and_none_handled() -> None:
    clock = Clock()
    watch = ProgressWatch(clock)
    clock.t = 100.0
    assert watch.stalled_seconds() == 0  # nothing pending: idle, not stalled
    watch.pending(0)
    clock.t = 110.0
    watch.pending(500)
    assert watch.stalled_seconds() == pytest.approx(10.0)
    clock.t = 130.0
    # counted from the last moment nothing was pending (the records arrived some time after it)
    assert watch.stalled_seconds() == pytest.approx(30.0)
    assert watch.should_warn(30.0) and not watch.should_warn(30.0)  # once per stall
    watch.handled(500)
    assert watch.stalled_seconds() == 0
    clock.t = 190.0
    assert watch.stalled_seconds() == pytest.approx(60.0)  # still pending since the last progress
    assert watch.should_warn(30.0)
