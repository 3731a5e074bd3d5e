"""Publish keyed records (decisions, dead letters) and wait until the broker acknowledged every one.

Records are grouped per partition into aiokafka ``BatchBuilder``s and submitted with ``send_batch``
(several times cheaper than one ``send()`` per record). Partitions are chosen with the Java client's
murmur2 partitioner on the key, so a decision lands where any Kafka client would put that key.
:meth:`RecordPublisher.publish` returns only when every record is acknowledged, and retries only the
partition batches that failed; a retried batch may duplicate records (at-least-once: downstream
deduplicates on the application-id key).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import murmur2

Record = tuple[bytes | None, bytes]  # (key, value)


@dataclass(frozen=True, slots=True)
class PartitionBatch:
    topic: str
    partition: int
    records: tuple[Record, ...]


def partition_for(key: bytes | None, partitions: Sequence[int]) -> int:
    """Java-compatible default partitioning (murmur2 of the key; random when there is no key)."""
    if key is None:
        return random.choice(partitions)
    idx = (murmur2(key) & 0x7FFFFFFF) % len(partitions)
    return partitions[idx]


def group_by_partition(
    topic: str, records: Sequence[Record], partitions: Sequence[int]
) -> list[PartitionBatch]:
    """Split records into per-partition groups, keeping each partition's order."""
    ordered = sorted(partitions)
    groups: dict[int, list[Record]] = {}
    for rec in records:
        groups.setdefault(partition_for(rec[0], ordered), []).append(rec)
    return [PartitionBatch(topic, p, tuple(recs)) for p, recs in groups.items()]


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
                pending.append((group, await self._submit(group)))
            except Exception:
                failed.append(group)
        for group, futures in pending:
            results = await asyncio.gather(*futures, return_exceptions=True)
            if any(isinstance(r, BaseException) for r in results):
                failed.append(group)
        return failed

    async def submit(self, groups: Sequence[PartitionBatch]) -> list[asyncio.Future[Any]]:
        """Hand every group to the producer without waiting for acks (load generators)."""
        futures: list[asyncio.Future[Any]] = []
        for group in groups:
            futures.extend(await self._submit(group))
        return futures

    async def _submit(self, group: PartitionBatch) -> list[asyncio.Future[Any]]:
        producer = self._producer
        futures: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for key, value in group.records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                if batch.record_count() == 0:
                    raise ValueError(f"record of {len(value)} bytes does not fit in a producer batch")
                futures.append(await producer.send_batch(batch, group.topic, partition=group.partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record of {len(value)} bytes does not fit in a producer batch")
        if batch.record_count():
            futures.append(await producer.send_batch(batch, group.topic, partition=group.partition))
        return futures
