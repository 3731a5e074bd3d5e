"""Retry a transient fault with exponential backoff and jitter, counting every retry in the metrics.

A transient fault (Redis down, broker unreachable) is retried until it heals or the worker is asked to
stop (:class:`EngineStoppedError`, the batch then stays uncommitted and is reprocessed later): a valid
event is never dead-lettered because a dependency was away.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from credit_scorer.metrics import ScorerMetrics
from stream_app.exceptions import EngineStoppedError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    initial_s: float
    max_s: float

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): initial·2^(n-1), capped, ±20 % jitter."""
        base = min(self.max_s, self.initial_s * (2 ** min(attempt - 1, 30)))
        return base * random.uniform(0.8, 1.2)


async def retry_transient(
    op: Callable[[], Awaitable[T]],
    *,
    dependency: str,
    transient: tuple[type[BaseException], ...],
    backoff: Backoff,
    metrics: ScorerMetrics,
    stopping: asyncio.Event | None = None,
) -> T:
    """Await ``op()`` until it succeeds; retry on ``transient`` errors; give up only when ``stopping``."""
    attempt = 0
    while True:
        try:
            return await op()
        except transient as exc:
            attempt += 1
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
            raise EngineStoppedError(f"stopped while waiting for {dependency}") from exc
