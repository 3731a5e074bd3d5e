"""The replay reader on a real Tansu broker: stops at the real log end, ranges by offset and by time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from credit_scorer.settings import KafkaSettings
from devtools.harness import create_topics
from replay.exceptions import TopicError
from replay.reader import ReadRange, TopicReader, read_all

pytestmark = pytest.mark.integration

BATCHES, PER_BATCH = 6, 25
BASE_MS = 1_790_000_000_000


async def produce_batches(bootstrap: str, topic: str, partition: int, batches: int, per_batch: int) -> None:
    """``batches`` record batches of ``per_batch`` records; record i has timestamp BASE_MS + i seconds."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0)
    await producer.start()
    try:
        i = 0
        for _ in range(batches):
            batch = producer.create_batch()
            for _ in range(per_batch):
                batch.append(key=b"k%d" % i, value=b"v%d" % i, timestamp=BASE_MS + 1000 * i)
                i += 1
            await (await producer.send_batch(batch, topic, partition=partition))
    finally:
        await producer.stop()


@pytest.fixture
def batched_topic(tansu_broker: str) -> Callable[..., tuple[KafkaSettings, str]]:
    async def make() -> tuple[KafkaSettings, str]:
        topic = f"replay-read-{uuid.uuid4().hex[:10]}"
        await create_topics(tansu_broker, [topic], 3)  # partition 2 stays empty
        await produce_batches(tansu_broker, topic, 0, BATCHES, PER_BATCH)
        await produce_batches(tansu_broker, topic, 1, 1, 1)
        return KafkaSettings(bootstrap_servers=tansu_broker, request_timeout_s=10), topic

    return make


async def test_reader_stops_at_the_real_log_end_although_list_offsets_latest_is_wrong(
    batched_topic: Callable[..., tuple[KafkaSettings, str]],
) -> None:
    kafka, topic = await batched_topic()
    reader = TopicReader(kafka, topic)
    await reader.start()
    try:
        from aiokafka import TopicPartition

        latest = await reader._consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
    finally:
        await reader.stop()
    # The trap this reader avoids (Tansu): LATEST = base offset of the last batch + 1, not the log end.
    reported = {tp.partition: o for tp, o in latest.items()}
    if reported[0] == BATCHES * PER_BATCH:
        pytest.fail(
            "Tansu's ListOffsets LATEST is right now: the stopping rule no longer needs the highwater"
        )
    assert reported[0] == (BATCHES - 1) * PER_BATCH + 1

    messages, ends = await asyncio.wait_for(read_all(kafka, topic), 30)

    assert ends == {0: BATCHES * PER_BATCH, 1: 1, 2: 0}
    offsets = sorted((m.partition, m.offset) for m in messages)
    assert offsets == [(0, i) for i in range(BATCHES * PER_BATCH)] + [(1, 0)]
    assert [m.value for m in messages if m.partition == 0] == [b"v%d" % i for i in range(BATCHES * PER_BATCH)]


async def test_reader_ranges_by_offsets_and_by_record_time(
    batched_topic: Callable[..., tuple[KafkaSettings, str]],
) -> None:
    kafka, topic = await batched_topic()

    by_offset, ends = await read_all(kafka, topic, ReadRange(from_offsets={0: 10}, to_offsets={0: 55, 1: 0}))
    assert sorted(m.offset for m in by_offset) == list(range(10, 55))
    assert {m.partition for m in by_offset} == {0} and ends[0] == 55 and ends[1] == 0

    rng = ReadRange(from_ms=BASE_MS + 30_000, to_ms=BASE_MS + 80_000)  # records 30..79 of partition 0
    by_time, _ = await read_all(kafka, topic, rng)
    assert sorted((m.partition, m.offset) for m in by_time) == [(0, i) for i in range(30, 80)]

    # A resumed read with pinned ends does not read past them, even though the log grew since.
    await produce_batches(kafka.bootstrap_servers, topic, 0, 1, 5)
    pinned, _ = await read_all(kafka, topic, ReadRange(from_offsets={0: 140}), ends={0: 150, 1: 1, 2: 0})
    assert sorted((m.partition, m.offset) for m in pinned) == [(0, i) for i in range(140, 150)] + [(1, 0)]


async def test_a_start_offset_past_the_log_end_reads_nothing_of_that_partition(
    batched_topic: Callable[..., tuple[KafkaSettings, str]],
) -> None:
    kafka, topic = await batched_topic()
    try:
        messages, ends = await asyncio.wait_for(
            read_all(kafka, topic, ReadRange(from_offsets={0: 10_000})), 30
        )
    except TopicError as exc:  # a broker answering OffsetOutOfRange: a clear error, never a silent reset
        assert "out of range" in str(exc)
        return
    assert ends[0] == BATCHES * PER_BATCH and sorted((m.partition, m.offset) for m in messages) == [(1, 0)]


async def test_reader_names_a_missing_topic_and_an_unknown_partition(
    batched_topic: Callable[..., tuple[KafkaSettings, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka, topic = await batched_topic()
    with pytest.raises(TopicError, match="no partition 7"):
        await read_all(kafka, topic, ReadRange(from_offsets={7: 0}))
    monkeypatch.setattr("replay.reader.METADATA_TIMEOUT_S", 1.0)
    with pytest.raises(TopicError, match="not found"):
        await read_all(kafka, f"missing-{uuid.uuid4().hex[:8]}")
