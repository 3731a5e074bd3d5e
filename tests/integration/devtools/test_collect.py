"""The test collector (harness.collect) ends on a condition — every key seen, the log end — never on a
quiet spell: a writer paused longer than an idle guess (a rebalance) is still waited for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from devtools.harness import KafkaTopics, collect, produce_payloads

pytestmark = pytest.mark.integration

PAUSE_S = 2.5  # longer than the chaos test's old idle gap (2 s)


def records(prefix: str, n: int, copies: int = 1) -> list[tuple[bytes, bytes]]:
    return [(f"{prefix}-{i}".encode(), b"{}") for _ in range(copies) for i in range(n)]


async def test_keys_are_waited_for_across_a_pause_in_writing(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topic = make_topics(partitions=2).decisions
    first, late = records("k", 20), records("late", 1)
    await produce_payloads(kafka_bootstrap, topic, first)
    keys = {k for k, _ in first + late}
    reading = asyncio.create_task(collect(kafka_bootstrap, topic, keys=keys, timeout_s=60))
    await asyncio.sleep(PAUSE_S)  # the pause in writing itself (the stimulus, not a wait)
    assert not reading.done(), "collect returned before the last key was written"
    await produce_payloads(kafka_bootstrap, topic, late)
    got = await reading
    assert {r.key for r in got} == {k for k, _ in first + late}


async def test_to_end_returns_every_record_duplicates_included_and_the_deadline_what_it_read(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topic = make_topics(partitions=3).decisions
    sent = records("d", 40, copies=3)  # every key three times
    await produce_payloads(kafka_bootstrap, topic, sent)

    everything = await collect(kafka_bootstrap, topic, to_end=True, timeout_s=60)
    assert sorted(r.key or b"" for r in everything) == sorted(k for k, _ in sent)
    assert await collect(kafka_bootstrap, make_topics(partitions=2).decisions, to_end=True) == []

    started = time.monotonic()
    partial = await collect(kafka_bootstrap, topic, keys={b"never-sent"}, timeout_s=1.5)
    assert time.monotonic() - started >= 1.5
    assert len(partial) == len(sent) and b"never-sent" not in {r.key for r in partial}
