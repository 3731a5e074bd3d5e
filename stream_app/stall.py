"""How long records have waited with nothing handled: the stall every alert and log line is about.

A worker is *stalled* when records are pending on its partitions and it has neither decided nor
dead-lettered any for a while, whatever the cause (starved fetches, a hung dependency, a bug). The
gauge ``credit_scorer_stalled_seconds`` reads :meth:`ProgressWatch.stalled_seconds` at scrape time, so
it keeps growing even if the loop that updates the watch is itself stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressWatch:
    """Fed by the engine: :meth:`handled` after each delivered batch, :meth:`pending` with the lag."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since = clock()  # last progress, or the last moment nothing was pending
        self._pending = 0
        self._warned = False

    def handled(self, records: int) -> None:
        if records:
            self._since = self._clock()
            self._warned = False

    def pending(self, records: int) -> None:
        self._pending = records
        if records <= 0:  # idle is not a stall
            self._since = self._clock()
            self._warned = False

    def stalled_seconds(self) -> float:
        return max(0.0, self._clock() - self._since) if self._pending > 0 else 0.0

    def should_warn(self, after_s: float) -> bool:
        """True once per stall, when it has lasted ``after_s`` (the caller logs at WARNING)."""
        if self._warned or self.stalled_seconds() < after_s:
            return False
        self._warned = True
        return True

    @property
    def pending_records(self) -> int:
        return self._pending
