"""The worker's checkpoint: records fetched → acknowledged → offsets committed (cf. quix-streams'
``Checkpoint``).

A batch's offsets are *acknowledged* once every decision and dead letter it produced is acknowledged
by the broker, in batch order; the committer task commits what was acknowledged off the batch path
(one commit in flight; the batches acknowledged meanwhile go into the next one). Nothing that was not
acknowledged is ever committed, so a crash anywhere loses nothing (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from credit_scorer.metrics import ScorerMetrics

Offsets = dict[Any, int]  # TopicPartition → next offset to read


class Checkpoint:
    """``commit(offsets)`` is the source's (it owns the consumer and knows the assignment)."""

    def __init__(self, commit: Callable[[Offsets], Awaitable[None]], metrics: ScorerMetrics) -> None:
        self._commit = commit
        self.metrics = metrics
        self.in_flight = 0  # fetched, not yet committed
        self.batches_committed = 0
        self._acked: Offsets = {}
        self._acked_records = self._acked_batches = 0
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Commit what was acknowledged, then stop the committer."""
        try:
            await self.flush()
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None

    def fetched(self, records: int) -> None:
        self.in_flight += records
        self.metrics.in_flight.set(self.in_flight)

    def acknowledged(self, offsets: Offsets, records: int) -> None:
        """A batch's records all acknowledged (called in batch order, so offsets only move forward)."""
        self._acked.update(offsets)
        self._acked_records += records
        self._acked_batches += 1
        self._wanted.set()

    async def flush(self) -> None:
        """Commit every acknowledged batch now (rebalance, stop); returns when done."""
        async with self._lock:
            if not self._acked:
                return
            offsets, self._acked = self._acked, {}
            records, batches = self._acked_records, self._acked_batches
            self._acked_records = self._acked_batches = 0
            await self._commit(offsets)
            self.in_flight -= records
            self.metrics.in_flight.set(self.in_flight)
            self.batches_committed += batches

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            await self.flush()
