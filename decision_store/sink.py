"""``credit-scorer store sink``: the decisions topic → the store, at least once, each decision once.

One aiokafka group consumer (its own group, ``store.consumer_group``) reads micro-batches; each batch is
decoded (:mod:`decision_store.records`), written in one transaction, and only then are its offsets
committed. A crash between the two redelivers the batch, and the upsert keyed by (application_id,
kind) makes the second write a no-op: nothing lost, nothing stored twice.

Faults: the database or the broker away → retried with backoff until healed or stopped (the batch
stays uncommitted); an undecodable record → logged, counted (``outcome="rejected"``) and skipped, never
blocking its partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from credit_scorer.exceptions import StoppedError
from credit_scorer.metrics import StoreMetrics
from credit_scorer.retry import Backoff, retry_transient
from credit_scorer.settings import Settings
from decision_store.exceptions import UndecodableDecisionError
from decision_store.migrate import upgrade
from decision_store.records import decode_decision
from decision_store.store import REFUSED_VALUE_ERRORS, TRANSIENT_ERRORS, DecisionStore, describe
from kafka_io.commit import commit_assigned
from kafka_io.config import consumer_kwargs

log = logging.getLogger(__name__)


def decode_batch(messages: list[Any], metrics: StoreMetrics) -> list[dict[str, Any]]:
    """Rows of the batch's decisions; replays skipped, undecodable records logged and counted."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for m in messages:
        try:
            row = decode_decision(m.value, now)
        except UndecodableDecisionError as exc:
            metrics.stored.labels("rejected").inc()
            log.warning("skipped %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)
            continue
        if row is None:
            metrics.stored.labels("replay").inc()
        else:
            rows.append(row)
    return rows


def write_batch(store: DecisionStore, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(written, rejected): the batch in one transaction; when the database refuses a value in it (e.g.
    a NUL character PostgreSQL cannot keep), row by row, each refused row logged and skipped — one bad
    decision never blocks its partition. Transient faults propagate (the caller retries)."""
    try:
        return store.upsert(rows), 0
    except REFUSED_VALUE_ERRORS as exc:
        log.warning("batch refused (%s); writing its %d rows one by one", describe(exc), len(rows))
    written = rejected = 0
    for row in rows:
        try:
            written += store.upsert([row])
        except REFUSED_VALUE_ERRORS as exc:
            rejected += 1
            log.warning("skipped decision %r: %s", row["application_id"], describe(exc))
    return written, rejected


class StoreSink:
    """Created with explicit settings; the consumer and the engine are made in :meth:`run`."""

    def __init__(self, settings: Settings, metrics: StoreMetrics, stopping: asyncio.Event) -> None:
        self.settings = settings
        self.metrics = metrics
        self.stopping = stopping
        stream = settings.stream
        self.backoff = Backoff(stream.retry_initial_s, stream.retry_max_s)
        self.store: DecisionStore | None = None
        self.consumer: AIOKafkaConsumer | None = None

    async def _retry(self, op: Any, dependency: str, transient: tuple[type[BaseException], ...]) -> Any:
        return await retry_transient(
            op,
            dependency=dependency,
            transient=transient,
            backoff=self.backoff,
            metrics=self.metrics,
            stopping=self.stopping,
        )

    async def _start(self) -> None:
        s = self.settings
        store = DecisionStore.from_url(s.store.resolved_url(s.paths.data_dir))
        self.store = store
        await self._retry(lambda: asyncio.to_thread(upgrade, store.engine), "database", TRANSIENT_ERRORS)
        kafka = s.kafka.model_copy(update={"consumer_group": s.store.consumer_group})
        consumer = AIOKafkaConsumer(**consumer_kwargs(kafka, s.store.batch_max, 100))
        consumer.subscribe([kafka.decisions_topic])
        self.consumer = consumer
        await self._retry(consumer.start, "kafka", (KafkaError, OSError))

    async def run(self) -> None:
        """Consume until ``stopping`` is set; the batch in hand is finished (or left uncommitted)."""
        try:
            await self._start()
            while not self.stopping.is_set():
                await self._step()
        except StoppedError:
            log.info("stopped while waiting for a dependency; the batch in hand will be redelivered")
        finally:
            if self.consumer is not None:
                await self.consumer.stop()
            if self.store is not None:
                self.store.close()

    async def _step(self) -> None:
        consumer, store = self.consumer, self.store
        assert consumer is not None and store is not None
        cfg = self.settings.store
        try:
            data = await consumer.getmany(
                timeout_ms=max(1, int(cfg.batch_within_s * 1000)), max_records=cfg.batch_max
            )
        except KafkaError as exc:
            log.warning("fetch failed (%s); retrying", exc)
            self.metrics.retries.labels("kafka").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.backoff.delay(1))
            return
        if not data:
            return
        messages = [m for msgs in data.values() for m in msgs]
        rows = decode_batch(messages, self.metrics)
        started = time.perf_counter()
        written, rejected = await self._retry(
            lambda: asyncio.to_thread(write_batch, store, rows), "database", TRANSIENT_ERRORS
        )
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.stored.labels("stored").inc(written)
        self.metrics.stored.labels("rejected").inc(rejected)
        self.metrics.stored.labels("duplicate").inc(len(rows) - written - rejected)
        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in data.items() if msgs}
        await self._commit(consumer, offsets)
        for tp in offsets:
            end = consumer.highwater(tp)
            if end is not None:
                self.metrics.consumer_lag.labels(str(tp.partition)).set(max(0, end - offsets[tp]))

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit after the database did; a rebalance in between only means a redelivery (a no-op)."""
        retries = self.metrics.retries.labels("kafka")
        await commit_assigned(
            consumer, offsets, backoff=self.backoff, stopping=self.stopping, on_retry=retries.inc
        )
