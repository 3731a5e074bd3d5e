"""Notice a consumer that fetches nothing while records wait for it, and say how to recover.

Why this exists: Tansu 0.6's memory storage (the embedded broker) reads its log more slowly as the log
grows, and answers a fetch with only what it could read within the request's ``fetch_max_wait_ms``.
Once one read of a partition takes longer than that wait, every fetch comes back empty at once, the
client asks again at once, and the consumer never moves: lag grows, nothing is in flight, no error is
raised anywhere. A longer long-poll lets the broker finish its read (records come back again), so the
guard raises the wait when it sees the consumer starved, and escalates to restarting the partitions'
fetches when the longest allowed wait is not enough. No broker is assumed: the same rule holds on
Apache Kafka, where it should simply never fire.

"Starved" is measured against time spent *waiting for records* (inside the consumer's poll), never
against wall time, so a batch stuck on a Redis outage or a slow publish does not count: over a window
of ``window_s`` seconds of waiting, fewer records arrived than were pending (capped at one batch).
Two starved windows in a row act (one can be a record that arrived at the window's last instant).

Pure logic (a clock is passed in); :mod:`stream_app.runtime` and the Faust engine's watchdog
apply its actions to an aiokafka consumer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    RAISE_WAIT = "raise_wait"  # long-poll doubled (up to the cap)
    RESTART_FETCH = "restart_fetch"  # already at the cap: re-seek the lagging partitions
    RELAX_WAIT = "relax_wait"  # healthy for a while: long-poll halved (down to the configured floor)


@dataclass(frozen=True)
class Verdict:
    action: Action
    wait_ms: int  # the long-poll to use from now on
    pending: int  # records waiting when the verdict was taken
    starved_s: float  # seconds of waiting with records pending and none (or too few) arriving


@dataclass
class FetchGuard:
    """Per-consumer state; feed it every poll with :meth:`observe`."""

    floor_ms: int  # the configured long-poll (settings.stream.fetch_max_wait_ms)
    cap_ms: int = 1000  # the longest long-poll it may set
    batch_max: int = 500
    window_s: float = 0.5
    windows_to_act: int = 2
    relax_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.floor_ms < 1 or self.cap_ms < self.floor_ms:
            raise ValueError(f"need 1 <= floor_ms <= cap_ms, got {self.floor_ms} and {self.cap_ms}")
        self.wait_ms = self.floor_ms
        self.starved_s = 0.0  # waiting time since records were last fetched while some were pending
        self._waited = 0.0
        self._records = 0
        self._starved_windows = 0
        self._healthy_since: float | None = None

    def observe(self, records: int, waited_s: float, pending: int | None, now: float) -> Verdict | None:
        """One poll: ``records`` it returned after waiting ``waited_s``; ``pending`` records behind the
        consumer's position now (None: unknown, e.g. no fetch response yet). Returns an action or None.

        ``pending`` is only read at a window's end, so the caller may compute it lazily: call
        :meth:`window_due` first."""
        self._waited += waited_s
        self._records += records
        if self._waited < self.window_s:
            return None
        waited, got = self._waited, self._records
        self._waited, self._records = 0.0, 0
        if pending is None:
            return None
        if pending > 0 and got < min(pending, self.batch_max):
            return self._starved(waited, pending, now)
        self._starved_windows = 0
        self.starved_s = 0.0
        if self._healthy_since is None:
            self._healthy_since = now
        if self.wait_ms > self.floor_ms and now - self._healthy_since >= self.relax_after_s:
            self.wait_ms = max(self.floor_ms, self.wait_ms // 2)
            self._healthy_since = now
            return Verdict(Action.RELAX_WAIT, self.wait_ms, pending, 0.0)
        return None

    def window_due(self, waited_s: float) -> bool:
        """Whether the poll that just waited ``waited_s`` closes a window (then pass ``pending``)."""
        return self._waited + waited_s >= self.window_s

    def _starved(self, waited: float, pending: int, now: float) -> Verdict | None:
        self.starved_s += waited
        self._healthy_since = None
        self._starved_windows += 1
        if self._starved_windows < self.windows_to_act:
            return None
        self._starved_windows = 0
        if self.wait_ms < self.cap_ms:
            self.wait_ms = min(self.cap_ms, self.wait_ms * 2)
            return Verdict(Action.RAISE_WAIT, self.wait_ms, pending, self.starved_s)
        return Verdict(Action.RESTART_FETCH, self.wait_ms, pending, self.starved_s)
