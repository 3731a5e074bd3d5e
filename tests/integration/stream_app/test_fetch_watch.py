"""The fetch watch's hands on a real aiokafka consumer and a real broker (Tansu or Apache Kafka)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest

from devtools.harness import KafkaTopics
from stream_app.fetch_watch import positions, set_fetch_wait

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, f"v{i}".encode(), key=f"k{i}".encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()


async def _consumer(bootstrap: str, tp: TopicPartition, wait_ms: int) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=wait_ms
    )
    await consumer.start()
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    return consumer


def _count_fetches(consumer: AIOKafkaConsumer) -> list[float]:
    """A spy on the real client: the time of every fetch request it sends (each still goes out)."""
    sent: list[float] = []
    client: Any = consumer._client
    real_send = client.send

    async def send(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(request, FetchRequest):
            sent.append(time.monotonic())
        return await real_send(node_id, request, *args, **kwargs)

    client.send = send
    return sent


async def test_set_fetch_wait_changes_the_long_poll_of_the_next_fetches(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topic = make_topics(1).applications
    tp = TopicPartition(topic, 0)
    await _produce(kafka_bootstrap, topic, 5)
    consumer = await _consumer(kafka_bootstrap, tp, wait_ms=5)
    try:
        got = await consumer.getmany(tp, timeout_ms=5000)
        assert len(got[tp]) == 5
        sent = _count_fetches(consumer)
        await asyncio.sleep(1.0)  # idle: Tansu holds each fetch for its long-poll
        short = len(sent)
        set_fetch_wait(consumer, 400)
        await asyncio.sleep(0.5)  # the fetch in flight with the old wait ends
        sent.clear()
        await asyncio.sleep(2.0)
        long = len(sent)
        assert short > 20, short  # ~5 ms per fetch
        assert long <= 7, long  # ~400 ms per fetch
    finally:
        await consumer.stop()


async def test_positions_and_a_restart_by_seek_lose_and_repeat_nothing(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topic = make_topics(1).applications
    tp = TopicPartition(topic, 0)
    await _produce(kafka_bootstrap, topic, 300)
    consumer = await _consumer(kafka_bootstrap, tp, wait_ms=20)
    try:
        offsets: list[int] = []
        deadline = time.monotonic() + 20
        while len(offsets) < 100 and time.monotonic() < deadline:
            got = await consumer.getmany(tp, timeout_ms=500, max_records=100 - len(offsets))
            offsets += [m.offset for m in got.get(tp, [])]
        where = positions(consumer)
        assert where[tp] == (100, 300)  # next offset to hand out, high watermark from the fetches
        consumer.seek(tp, where[tp][0])  # what the watch does to restart a starved fetch
        while len(offsets) < 300 and time.monotonic() < deadline:
            got = await consumer.getmany(tp, timeout_ms=500)
            offsets += [m.offset for m in got.get(tp, [])]
        assert offsets == list(range(300))
    finally:
        await consumer.stop()
