"""The stream latency benchmark's load generator (bench.stream_load.offer) on a real Tansu broker.

When the offerer falls behind (a stall on a busy machine), one tick carries more records per partition
than one producer batch holds (aiokafka's default ``max_batch_size``, 16 KiB: ~55 application
events). ``BatchBuilder.append`` then refuses the record (returns None); the offerer used to ignore
that, so the overflow was never sent although every send was acknowledged — seen as "49,000 of
50,000 decisions collected".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

from bench.stream_load import acked_anomalies, offer
from devtools.harness import KafkaTopics, collect


def _records(n: int) -> list[tuple[bytes, bytes]]:
    doc = {"application_id": "", "sk_id_curr": 100002, "amt_credit": 406597.5, "note": "x" * 250}
    return [(f"lat-{i}".encode(), orjson.dumps({**doc, "application_id": f"lat-{i}"})) for i in range(n)]


def test_a_burst_larger_than_one_producer_batch_is_sent_whole(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topics = make_topics(partitions=2)
    n = 600  # all due in the first tick (the rate is far above what one tick can send): ~300 per partition
    records = _records(n)

    result = asyncio.run(offer(kafka_bootstrap, topics.applications, records, rate=1e12))
    on_topic = asyncio.run(collect(kafka_bootstrap, topics.applications, to_end=True, timeout_s=60))

    assert result["largest_tick"] == n
    assert result["acked_records"] == n
    assert sorted(r.key or b"" for r in on_topic) == sorted(k for k, _ in records)
    assert acked_anomalies(result["acked"]) == []
    for r in on_topic:  # each record stamped with the time it was sent
        assert orjson.loads(r.value)["event_time"]


def test_acked_anomalies_names_overlaps_and_holes() -> None:
    acked = [[0, 10, 5, 0], [0, 15, 5, 7], [0, 18, 2, 20], [1, 0, 3, 1], [1, 4, 1, 9]]
    assert acked_anomalies(acked) == [
        "p0: batch of 2 from #20 acked at 18, overlaps (next was 20)",
        "p1: batch of 1 from #9 acked at 4, skips (next was 3)",
    ]
