"""The fetch guard and the stall watch applied to one aiokafka consumer, for either engine.

* :func:`positions` — (position, high watermark) of each assigned partition, read without awaiting
  (the Faust engine's consumer lives on another thread's loop);
* :func:`set_fetch_wait` — change a started consumer's long-poll for its next fetches;
* :class:`FetchWatch` — fed after every poll (batch engine) or on a timer (Faust engine): exports the
  lag, feeds :class:`stream_app.fetch_guard.FetchGuard` and :class:`stream_app.stall.ProgressWatch`,
  applies the guard's verdicts to the consumer and says so at WARNING.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import StreamSettings
from stream_app.fetch_guard import Action, FetchGuard, Verdict
from stream_app.stall import ProgressWatch

log = logging.getLogger(__name__)
LAG_EVERY_S = 1.0  # the lag gauge's refresh while the worker is busy (no fetch window closes)
STALL_WARN_S = 30.0  # records pending and none handled this long: say so at WARNING (and the gauge)

Positions = dict[Any, tuple[int, int]]  # TopicPartition → (position, high watermark)


def positions(consumer: Any) -> Positions:
    """Assigned partitions with a known position and high watermark (from fetch responses, never
    ListOffsets LATEST, which Tansu answers wrongly). Reads aiokafka's subscription state directly
    (aiokafka 0.14) so that it needs no await on the consumer's own loop."""
    subscription = getattr(consumer._subscription, "subscription", None)
    if subscription is None or subscription.assignment is None:
        return {}
    out: Positions = {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        try:
            state = subscription.assignment.state_value(tp)
        except (KeyError, AttributeError):  # revoked meanwhile
            continue
        if state is not None and state.has_valid_position:
            out[tp] = (state.position, highwater)
    return out


def set_fetch_wait(consumer: Any, wait_ms: int) -> None:
    """Change a started aiokafka consumer's long-poll (``fetch_max_wait_ms``) for its next fetches.

    aiokafka has no public setter: its fetcher reads ``_fetch_max_wait_ms`` when it builds each fetch
    request (aiokafka 0.14, ``Fetcher._get_actions_per_node``); a test on a real broker checks it."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
        raise RuntimeError("this aiokafka version has no fetcher long-poll to adjust")
    consumer._fetch_max_wait_ms = wait_ms  # a fetcher re-created on restart starts from it
    fetcher._fetch_max_wait_ms = wait_ms


class FetchWatch:
    """One consumer's fetch guard, stall watch and lag gauge."""

    def __init__(self, stream: StreamSettings, metrics: ScorerMetrics, progress: ProgressWatch) -> None:
        self.metrics = metrics
        self.progress = progress
        self.guard = FetchGuard(
            floor_ms=stream.fetch_max_wait_ms,
            cap_ms=max(stream.fetch_max_wait_ms, stream.fetch_max_wait_cap_ms),
            batch_max=stream.batch_max,
        )
        metrics.fetch_wait.set(self.guard.wait_ms / 1000)
        self._looked_at = 0.0

    def observe(
        self,
        consumer: Any,
        fetched: int,
        waited_s: float,
        in_flight: int,
        seek: Callable[[Any, int], None] | None = None,
    ) -> Verdict | None:
        """After a poll that returned ``fetched`` records after ``waited_s`` of waiting, with
        ``in_flight`` records fetched and not yet handled. ``seek(tp, offset)`` restarts a partition's
        fetch (default: ``consumer.seek``; the Faust engine passes one that runs on the consumer's loop)."""
        now = time.monotonic()
        if not self.guard.window_due(waited_s) and now - self._looked_at < LAG_EVERY_S:
            return self.guard.observe(fetched, waited_s, None, now)  # mid-window: only accumulates
        self._looked_at = now
        where = positions(consumer)
        for tp, (position, highwater) in where.items():
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
        pending = sum(max(0, hw - pos) for pos, hw in where.values()) if where else None
        verdict = self.guard.observe(fetched, waited_s, pending, now)
        self.metrics.fetch_starved.set(self.guard.starved_s)
        if pending is not None:
            self.progress.pending(pending + in_flight)
        if self.progress.should_warn(STALL_WARN_S):
            log.warning(
                "no application decided for %.0f s while %d records are pending (long-poll %d ms)",
                self.progress.stalled_seconds(),
                self.progress.pending_records,
                self.guard.wait_ms,
            )
        if verdict is not None:
            self._apply(consumer, verdict, where, seek or consumer.seek)
        return verdict

    def _apply(
        self, consumer: Any, verdict: Verdict, where: Positions, seek: Callable[[Any, int], None]
    ) -> None:
        self.metrics.fetch_recoveries.labels(verdict.action.value).inc()
        self.metrics.fetch_wait.set(verdict.wait_ms / 1000)
        set_fetch_wait(consumer, verdict.wait_ms)
        if verdict.action is Action.RELAX_WAIT:
            log.info("fetches healthy again: long-poll back to %d ms", verdict.wait_ms)
            return
        log.warning(
            "fetches starved: %d records pending, too few fetched in %.1f s of waiting; %s (long-poll %d ms)",
            verdict.pending,
            verdict.starved_s,
            "raising the long-poll" if verdict.action is Action.RAISE_WAIT else "restarting the fetches",
            verdict.wait_ms,
        )
        if verdict.action is Action.RESTART_FETCH:
            for tp, (position, highwater) in where.items():
                if highwater > position:
                    seek(tp, position)  # drops what was buffered past it; fetched again
