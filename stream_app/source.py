"""The worker's source: the applications topic through one aiokafka group consumer.

It consumes (``poll``: a micro-batch of :class:`kafka_io.records.InboundRecord`, with the next offset
of each partition), follows rebalances (``on_revoked`` lets the runtime finish and commit its in-flight
batch before partitions go), commits what the checkpoint hands it (only partitions still assigned),
and watches its fetches (:mod:`stream_app.fetch_watch`: lag gauge, fetch guard, stall watch).

The consumer is either started here or adopted from the worker's start-up, which joined the group
while the model loaded (:mod:`stream_app.startup`); rebalances reach this source from then on.

Manual commits only; ``auto_offset_reset="earliest"`` (a reset to "latest" asks ListOffsets LATEST,
which Tansu answers wrongly); records of partitions revoked while a poll waited are dropped (their
new owner reads them again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.retry import Backoff
from credit_scorer.settings import Settings
from kafka_io.commit import commit_assigned
from kafka_io.records import InboundRecord
from stream_app.fetch_watch import FetchWatch
from stream_app.stall import ProgressWatch
from stream_app.startup import JoinedConsumer, start_consumer

log = logging.getLogger(__name__)


@dataclass
class Polled:
    records: list[InboundRecord] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # next offset per partition


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.source.on_revoked(revoked)
        for tp in revoked:
            with contextlib.suppress(KeyError):
                self.source.metrics.consumer_lag.remove(tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned partitions: %s", sorted(tp.partition for tp in assigned))


class KafkaSource:
    """Consumer created in :meth:`start`; ``on_revoked(partitions)`` is awaited before they go."""

    def __init__(
        self,
        settings: Settings,
        metrics: ScorerMetrics,
        progress: ProgressWatch,
        stopping: asyncio.Event,
        on_revoked: Callable[[list[TopicPartition]], Awaitable[None]],
        joined: JoinedConsumer | None = None,
    ) -> None:
        self.settings = settings
        self._joined = joined  # a consumer started (group joined) while the model loaded
        self.metrics = metrics
        self.stopping = stopping
        self.on_revoked = on_revoked
        self.watch = FetchWatch(settings.stream, metrics, progress)
        self._consumer: AIOKafkaConsumer | None = None
        stream = settings.stream
        self._backoff = Backoff(stream.retry_initial_s, stream.retry_max_s)
        self._failures = 0

    async def start(self) -> None:
        joined, self._joined = self._joined, None
        if joined is not None:  # adopt it: rebalances come here from now on
            self._consumer = joined.consumer
            joined.listener.target = _Listener(self)
            return
        self._consumer, listener = start_consumer(self.settings)
        listener.target = _Listener(self)
        await self._consumer.start()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()  # leaves the group

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "source not started"
        return self._consumer

    async def poll(self, in_flight: int) -> Polled:
        """The next micro-batch (empty after ``batch_within_s`` with nothing, or a fetch fault, which
        is retried with backoff); ``in_flight`` records fetched earlier and not yet committed."""
        consumer, stream = self.consumer, self.settings.stream
        polled_at = time.monotonic()
        try:
            data = await consumer.getmany(
                timeout_ms=max(1, int(stream.batch_within_s * 1000)), max_records=stream.batch_max
            )
            self._failures = 0
        except KafkaError as exc:
            self._failures += 1
            self.metrics.retries.labels("kafka").inc()
            log.warning("fetch failed (%s); retry %d", exc, self._failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self._backoff.delay(self._failures))
            return Polled()
        waited = time.monotonic() - polled_at
        fetched = sum(len(msgs) for msgs in data.values())
        polled = self._records(data) if data else Polled()
        self.watch.observe(consumer, fetched, waited, in_flight + len(polled.records))
        return polled

    def _records(self, data: dict[TopicPartition, list[object]]) -> Polled:
        assigned = self.consumer.assignment()
        polled = Polled()
        for tp, msgs in data.items():
            if tp not in assigned or not msgs:
                continue  # revoked while we waited: its new owner reprocesses it
            polled.offsets[tp] = msgs[-1].offset + 1  # type: ignore[attr-defined]
            polled.records.extend(
                InboundRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)  # type: ignore[attr-defined]
                for m in msgs
            )
        return polled

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit the partitions still assigned (:func:`kafka_io.commit.commit_assigned`: duplicates after a
        rebalance, never a loss; broker faults retried, at most 3 times once stopping)."""
        retries = self.metrics.retries.labels("kafka")
        await commit_assigned(
            self.consumer, offsets, backoff=self._backoff, stopping=self.stopping, on_retry=retries.inc
        )
