"""The one batch sender (kafka_io.sender) on a real Tansu broker: a burst larger than one producer batch
(``max_batch_size``) goes out whole, in order, in several record batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from devtools.harness import KafkaTopics, collect
from kafka_io.sender import RecordPublisher, send_records

pytestmark = pytest.mark.integration

BATCH_BYTES = 4096  # a small producer batch, so a few hundred records overflow it many times


def _records(n: int, prefix: str = "k") -> list[tuple[bytes | None, bytes]]:
    return [(f"{prefix}-{i}".encode(), b"v%06d" % i + b"x" * 200) for i in range(n)]


async def _producer(bootstrap: str) -> Any:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=0,
        enable_idempotence=False,
        max_batch_size=BATCH_BYTES,
    )
    await producer.start()
    return producer


async def test_send_records_sends_a_burst_overflowing_one_producer_batch_completely(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topic = make_topics(partitions=2).applications
    records = _records(300)
    producer = await _producer(kafka_bootstrap)
    try:
        sent = await send_records(producer, topic, 1, records)
        metas = await asyncio.gather(*(s.future for s in sent))
    finally:
        await producer.stop()

    assert len(sent) > 1  # the burst did overflow one batch
    assert sum(s.count for s in sent) == len(records)
    assert [s.first for s in sent] == [sum(x.count for x in sent[:i]) for i in range(len(sent))]
    # every batch acknowledged on partition 1, at contiguous offsets
    assert {m.partition for m in metas} == {1}
    assert [m.offset for m in metas] == [metas[0].offset + s.first for s in sent]
    on_topic = await collect(kafka_bootstrap, topic, to_end=True, timeout_s=60)
    assert [(r.key, r.value) for r in sorted(on_topic, key=lambda r: r.offset)] == records
    assert {r.partition for r in on_topic} == {1}


async def test_publisher_sends_every_overflowing_group_completely(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topic = make_topics(partitions=3).decisions
    records = _records(900, prefix="app")
    producer = await _producer(kafka_bootstrap)
    try:
        publisher = RecordPublisher(producer)
        groups = await publisher.plan(topic, records)
        assert any(sum(len(k or b"") + len(v) for k, v in g.records) > BATCH_BYTES for g in groups)
        failed = await publisher.send_groups(groups)
    finally:
        await producer.stop()

    assert failed == []
    on_topic = await collect(kafka_bootstrap, topic, to_end=True, timeout_s=60)
    assert sorted((r.key, r.value) for r in on_topic) == sorted(records)
    for group in groups:  # each partition holds its group, in the order given
        got = [
            (r.key, r.value)
            for r in sorted(on_topic, key=lambda r: r.offset)
            if r.partition == group.partition
        ]
        assert got == list(group.records)
