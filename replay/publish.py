"""Publish a batch of rescored decisions to the replay topic and wait for the broker's acks."""

from __future__ import annotations

import asyncio
from typing import Any

from kafka_io.records import PartitionBatch, Record
from replay.exceptions import PublishError

PUBLISH_ATTEMPTS = 5


async def publish_records(
    publisher: Any, topic: str, records: list[Record], sources: list[int], source_partitions: list[int]
) -> None:
    """Publish and wait for the acks (retrying the partition batches that failed). When the replay topic
    has the applications topic's partitions (``source_partitions``), a decision goes to its
    application's partition number — where the producers' murmur2 of the same key put the application —
    without hashing every key again in Python; else keys are hashed."""
    if await publisher.partitions(topic) == source_partitions:
        by_partition: dict[int, list[Record]] = {}
        for record, partition in zip(records, sources, strict=True):
            by_partition.setdefault(partition, []).append(record)
        groups = [PartitionBatch(topic, p, tuple(recs)) for p, recs in by_partition.items()]
    else:
        groups = await publisher.plan(topic, records)
    for attempt in range(PUBLISH_ATTEMPTS):
        groups = await publisher.send_groups(groups)
        if not groups:
            return
        await asyncio.sleep(0.2 * 2**attempt)
    raise PublishError(
        f"{sum(len(g.records) for g in groups)} rescored decisions to {topic!r} were not acknowledged "
        f"after {PUBLISH_ATTEMPTS} attempts"
    )
