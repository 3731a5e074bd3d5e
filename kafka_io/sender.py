"""Send keyed records as aiokafka record batches, and publish them until the broker acknowledged each.

:func:`send_records` is the one per-partition ``send_batch`` loop (several times cheaper than one
``send()`` per record): it fills a ``BatchBuilder`` and starts a new one whenever it is full, so a burst
larger than one producer batch (``max_batch_size``) goes out whole, in order. The worker's and replay's
publisher, the CLI producer and the latency benchmark's load generator all send through it.

:meth:`RecordPublisher.send_groups` waits for every ack and returns the partition groups that failed,
so callers retry only those; a retried group may duplicate records (at-least-once: downstream
deduplicates on the application-id key). Partitions come from :mod:`kafka_io.partitioner`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka_io.exceptions import RecordTooLargeError
from kafka_io.partitioner import group_by_partition
from kafka_io.records import PartitionBatch, Record


@dataclass(frozen=True, slots=True)
class SentBatch:
    """One record batch handed to the producer: its delivery future and which records it carries."""

    future: asyncio.Future[Any]
    first: int  # index, in the records given to send_records, of the batch's first record
    count: int


async def send_records(
    producer: Any, topic: str, partition: int, records: Sequence[Record]
) -> list[SentBatch]:
    """Hand ``records`` to a started ``AIOKafkaProducer`` as record batches for one partition, in order,
    without waiting for acks. Raises :class:`RecordTooLargeError` when a record does not fit in an
    empty batch (the batches before it are already submitted)."""
    sent: list[SentBatch] = []
    batch, first = producer.create_batch(), 0
    for i, (key, value) in enumerate(records):
        if batch.append(key=key, value=value, timestamp=None) is not None:
            continue
        # full: the record append() refused is NOT in the batch; it opens the next one
        if batch.record_count() == 0:
            raise RecordTooLargeError(f"record of {len(value)} bytes does not fit in a producer batch")
        future = await producer.send_batch(batch, topic, partition=partition)
        sent.append(SentBatch(future, first, batch.record_count()))
        batch, first = producer.create_batch(), i
        if batch.append(key=key, value=value, timestamp=None) is None:
            raise RecordTooLargeError(f"record of {len(value)} bytes does not fit in a producer batch")
    if batch.record_count():
        future = await producer.send_batch(batch, topic, partition=partition)
        sent.append(SentBatch(future, first, batch.record_count()))
    return sent


class RecordPublisher:
    """Thin adapter over an started ``AIOKafkaProducer`` (the caller owns its lifecycle)."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._partitions: dict[str, list[int]] = {}

    async def partitions(self, topic: str) -> list[int]:
        cached = self._partitions.get(topic)
        if cached is None:
            cached = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = cached
        return cached

    async def plan(self, topic: str, records: Sequence[Record]) -> list[PartitionBatch]:
        """The per-partition groups of ``records`` (metadata is fetched once per topic)."""
        if not records:
            return []
        return group_by_partition(topic, records, await self.partitions(topic))

    async def send_groups(self, groups: Sequence[PartitionBatch]) -> list[PartitionBatch]:
        """Send every group; return those that failed (empty list = everything acknowledged)."""
        if not groups:
            return []
        pending: list[tuple[PartitionBatch, list[asyncio.Future[Any]]]] = []
        failed: list[PartitionBatch] = []
        for group in groups:
            try:
                sent = await send_records(self._producer, group.topic, group.partition, group.records)
            except Exception:
                failed.append(group)
            else:
                pending.append((group, [s.future for s in sent]))
        for group, futures in pending:
            results = await asyncio.gather(*futures, return_exceptions=True)
            if any(isinstance(r, BaseException) for r in results):
                failed.append(group)
        return failed
