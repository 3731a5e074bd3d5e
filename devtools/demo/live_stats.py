"""Pure statistics of the live view: rate and latency windows, counts, refusal reasons.

Fed with explicit timestamps (no clock, no I/O), so they are deterministic and property-tested
(``tests/unit/devtools/test_live_stats.py``). :mod:`devtools.demo.live_view` renders and feeds them.

The event→decision latency folded in is the worker's own ``latency.total_s`` of each Decision (the
producer's event time → decision built), i.e. the quantity behind
``credit_scorer_stage_seconds{stage="total"}``; it includes the time the event waited in the topic.
Beside it, the worker's own part, ``total_s - queue_s`` (consumed → decision built): when end-to-end
grows and this does not, the broker is slow, not the scorer (the worker's metric
``credit_scorer_worker_latency_seconds`` adds the produce acknowledgement, which no record can carry).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

PERCENTILES = (50.0, 95.0, 99.0)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (NaN when empty).

    The result is always one of the values: the smallest value with at least ``q`` % of the values
    at or below it.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * n))
    return float(sorted_values[rank - 1])


class RateWindow:
    """Events per second over the last ``window_s`` seconds, from (time, count) observations."""

    def __init__(self, window_s: float = 5.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        self._events: deque[tuple[float, int]] = deque()
        self._count = 0
        self._first_t: float | None = None

    def add(self, t: float, n: int = 1) -> None:
        if n < 0:
            raise ValueError(f"count must be >= 0, got {n}")
        if self._first_t is None:
            self._first_t = t
        self._events.append((t, n))
        self._count += n

    def _evict(self, now: float) -> None:
        horizon = now - self.window_s
        while self._events and self._events[0][0] <= horizon:
            self._count -= self._events.popleft()[1]

    def count(self, now: float) -> int:
        """Events observed in ``(now - window_s, now]``."""
        self._evict(now)
        return self._count

    def rate(self, now: float) -> float:
        """Count in the window divided by the window (or by the time since the first event if shorter)."""
        count = self.count(now)
        if count == 0 or self._first_t is None:
            return 0.0
        span = min(self.window_s, max(now - self._first_t, 1e-3))
        return count / span


class LatencyWindow:
    """The last ``maxlen`` latencies, for percentiles that follow the current load."""

    def __init__(self, maxlen: int = 20_000) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self._values: deque[float] = deque(maxlen=maxlen)

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    def percentiles(self, qs: Sequence[float] = PERCENTILES) -> tuple[float, ...]:
        ordered = sorted(self._values)
        return tuple(percentile(ordered, q) for q in qs)


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    elapsed_s: float
    decisions: int
    approvals: int
    refusals: int
    dead_letters: int
    rate_per_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    worker_p50_s: float
    worker_p99_s: float
    top_refusal_reasons: tuple[tuple[str, int], ...]
    dead_letter_kinds: tuple[tuple[str, int], ...]
    expected_total: int | None

    @property
    def approval_rate(self) -> float:
        return self.approvals / self.decisions if self.decisions else math.nan

    @property
    def handled(self) -> int:
        """Events that got an outcome (decision or dead letter)."""
        return self.decisions + self.dead_letters


@dataclass
class LiveStats:
    """Running statistics of decisions and dead letters (all times explicit, in seconds)."""

    started_at: float
    expected_total: int | None = None
    rate_window_s: float = 5.0
    latency_window: int = 20_000
    top_k: int = 5
    decisions: int = 0
    approvals: int = 0
    dead_letters: int = 0
    refusal_reasons: Counter[str] = field(default_factory=Counter)
    dead_letter_kinds: Counter[str] = field(default_factory=Counter)
    dedupe_window: int = 500_000
    duplicates: int = 0

    def __post_init__(self) -> None:
        self._rate = RateWindow(self.rate_window_s)
        self._latency = LatencyWindow(self.latency_window)
        self._worker = LatencyWindow(self.latency_window)
        # Redeliveries arrive within seconds: remembering the last ids bounds memory on long runs.
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()

    def reset(self, now: float) -> None:
        """Start over at ``now`` (e.g. after a warm-up event), keeping the settings."""
        self.started_at = now
        self.decisions = self.approvals = self.dead_letters = self.duplicates = 0
        self.refusal_reasons.clear()
        self.dead_letter_kinds.clear()
        self.__post_init__()

    def observe_decision(
        self,
        now: float,
        *,
        approved: bool,
        latency_s: float,
        reasons: Sequence[str] = (),
        application_id: str | None = None,
        worker_s: float = math.nan,
    ) -> None:
        """Fold one decision in. A repeated application id (at-least-once redelivery) is counted once."""
        if application_id is not None:
            if application_id in self._seen:
                self.duplicates += 1
                return
            self._seen.add(application_id)
            self._seen_order.append(application_id)
            if len(self._seen_order) > self.dedupe_window:
                self._seen.discard(self._seen_order.popleft())
        self.decisions += 1
        self._rate.add(now)
        self._latency.add(latency_s)
        self._worker.add(worker_s)
        if approved:
            self.approvals += 1
        elif reasons:
            # The first reason is the refusal's main driver.
            self.refusal_reasons[reasons[0]] += 1

    def observe_dead_letter(self, now: float, kind: str) -> None:
        self.dead_letters += 1
        self.dead_letter_kinds[kind] += 1

    def snapshot(self, now: float) -> LiveSnapshot:
        p50, p95, p99 = self._latency.percentiles(PERCENTILES)
        worker_p50, worker_p99 = self._worker.percentiles((50.0, 99.0))
        return LiveSnapshot(
            elapsed_s=max(0.0, now - self.started_at),
            decisions=self.decisions,
            approvals=self.approvals,
            refusals=self.decisions - self.approvals,
            dead_letters=self.dead_letters,
            rate_per_s=self._rate.rate(now),
            p50_s=p50,
            p95_s=p95,
            p99_s=p99,
            worker_p50_s=worker_p50,
            worker_p99_s=worker_p99,
            top_refusal_reasons=tuple(self.refusal_reasons.most_common(self.top_k)),
            dead_letter_kinds=tuple(self.dead_letter_kinds.most_common(self.top_k)),
            expected_total=self.expected_total,
        )


# --- decoding of the watched records (tolerant: a view never crashes on a record) -----------------
def fold_decision(stats: LiveStats, now: float, raw: bytes) -> bool:
    """Fold a Decision JSON record into ``stats``; False when the record is not a readable decision."""
    try:
        doc = orjson.loads(raw)
        decision = doc["decision"]
        latency = doc.get("latency") or {}
        total = latency.get("total_s") if isinstance(latency, dict) else None
        if total is None:
            total = doc.get("latency_total_s", math.nan)
        queue = latency.get("queue_s") if isinstance(latency, dict) else None
        worker = float(total) - float(queue) if total is not None and queue is not None else math.nan
        # version 2: reason codes and their texts; version 1: raw feature names
        codes = doc.get("reason_codes") or ()
        reasons = [f"{c['code']}: {c['text']}" for c in codes if isinstance(c, dict) and "code" in c] or [
            r["feature"] for r in doc.get("reasons") or () if isinstance(r, dict) and "feature" in r
        ]
        stats.observe_decision(
            now,
            approved=decision == "ACCORD",
            latency_s=float(total) if total is not None else math.nan,
            reasons=reasons,
            application_id=doc.get("application_id"),
            worker_s=worker,
        )
        return True
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return False


def fold_dead_letter(stats: LiveStats, now: float, raw: bytes) -> None:
    try:
        doc = orjson.loads(raw)
        kind = str(doc.get("error_kind", "unknown")) if isinstance(doc, dict) else "unknown"
    except orjson.JSONDecodeError:
        kind = "unreadable"
    stats.observe_dead_letter(now, kind)
