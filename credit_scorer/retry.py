"""The one retry policy for transient faults of a dependency (Redis, the broker): exponential backoff
with jitter, every retry counted in the metrics.

A transient fault is retried until it heals; the caller chooses how long it may wait:

* the stream worker and replay wait as long as it takes, until asked to stop (``stopping`` set:
  :class:`StoppedError`, the work in hand stays unacknowledged and is redone later) — a valid event is
  never dead-lettered, nor a replay aborted, because a dependency was away;
* ``POST /predict`` has a budget (``Backoff.max_attempts``): a request answers 503 rather than hang.

The Redis feature source (``feature_cache.source.RedisFeatureSource``) applies it to every
fetch, so the three share it; the worker's publisher applies it to the broker.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from credit_scorer.exceptions import StoppedError
from credit_scorer.settings import StreamSettings

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """How long to wait between tries, and how many tries at most (None: until healed or stopped)."""

    initial_s: float
    max_s: float
    max_attempts: int | None = None

    @classmethod
    def from_settings(cls, stream: StreamSettings, max_attempts: int | None = None) -> Backoff:
        """The configured delays (``settings.stream.retry_initial_s`` / ``retry_max_s``)."""
        return cls(stream.retry_initial_s, stream.retry_max_s, max_attempts)

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): initial·2^(n-1), capped, ±20 % jitter."""
        base = min(self.max_s, self.initial_s * (2 ** min(attempt - 1, 30)))
        return base * random.uniform(0.8, 1.2)

    def gives_up_after(self, attempt: int) -> bool:
        """True when ``attempt`` failed tries spend the budget."""
        return self.max_attempts is not None and attempt >= self.max_attempts


class RetryMetrics(Protocol):
    """Where retries are counted (``ScorerMetrics``: ``credit_scorer_retries_total{dependency}``)."""

    @property
    def retries(self) -> Any: ...


async def retry_transient(
    op: Callable[[], Awaitable[T]],
    *,
    dependency: str,
    transient: tuple[type[BaseException], ...],
    backoff: Backoff,
    metrics: RetryMetrics | None = None,
    stopping: asyncio.Event | None = None,
) -> T:
    """Await ``op()`` until it succeeds, retrying ``transient`` errors; re-raise the last one when the
    backoff's attempts are spent; raise StoppedError when ``stopping`` is set while waiting."""
    attempt = 0
    while True:
        try:
            return await op()
        except transient as exc:
            attempt += 1
            if backoff.gives_up_after(attempt):
                raise
            if metrics is not None:
                metrics.retries.labels(dependency).inc()
            delay = backoff.delay(attempt)
            log.warning(
                "%s unavailable (%s: %s); retry %d in %.2fs",
                dependency,
                type(exc).__name__,
                exc,
                attempt,
                delay,
            )
            if stopping is None:
                await asyncio.sleep(delay)
                continue
            try:
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            except TimeoutError:
                continue
            raise StoppedError(f"stopped while waiting for {dependency}") from exc
