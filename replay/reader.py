"""Read a topic (or a range of it) with the replay's own consumer, and stop at the real log end.

The consumer has **no group** (``group_id=None``): partitions are assigned manually and nothing is ever
committed, so the live workers' committed offsets cannot move.

**Stopping rule.** Tansu answers ListOffsets LATEST (``end_offsets``) with the base offset of the last
record *batch* + 1, not the log end, and ``offsets_for_times`` with offset 0 for a time past the end —
a replay trusting either stops early or never. The high watermark carried by every Fetch response is
right, so the end of each partition is the first high watermark a fetch reports for it (a snapshot
taken when the replay starts: records produced later are not part of this replay), or ``--to-offset``
if lower. A partition is finished when the consumer's position reaches that end; it is then paused.
A resumed replay passes the ends stored in its checkpoint, so it stops where the first run would have.
If a partition makes no progress for ``stall_timeout_s`` (no record and no fetch response), the read
fails loudly (:class:`TopicError`) instead of hanging or silently stopping short.

**Ranges.** ``from``/``to`` offsets are per partition (``to`` is exclusive). Time bounds are applied to
each record's timestamp (``from_ms <= ts < to_ms``) while reading to the end, so they never depend on
the broker's time index nor on timestamps being monotonic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from credit_scorer.settings import KafkaSettings
from kafka_io.config import client_kwargs
from replay.exceptions import TopicError

METADATA_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ReadRange:
    """Which part of a topic to read. Offsets map partition → offset (``to`` exclusive)."""

    from_offsets: Mapping[int, int] = field(default_factory=dict)
    to_offsets: Mapping[int, int] = field(default_factory=dict)
    from_ms: int | None = None
    to_ms: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "from_offsets": {str(p): o for p, o in sorted(self.from_offsets.items())},
            "to_offsets": {str(p): o for p, o in sorted(self.to_offsets.items())},
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
        }


@dataclass(frozen=True, slots=True)
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass
class ReadBatch:
    """Records of one poll inside the range, and each partition's next offset after it."""

    messages: list[Message]
    next_offsets: dict[int, int]  # partition → next offset to read (covers skipped records too)
    seen: int  # records consumed from the log by this poll, in range or not


class TopicReader:
    """One topic, read from given start offsets to the log end (see module docstring).

    ``start()`` creates the consumer; ``stop()`` closes it. ``read(starts, ends)`` yields batches.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        *,
        batch_size: int = 5_000,
        poll_ms: int = 200,
        stall_timeout_s: float = 30.0,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.batch_size = batch_size
        self.poll_ms = poll_ms
        self.stall_timeout_s = stall_timeout_s
        self.starts: dict[int, int] = {}
        self.ends: dict[int, int | None] = {}
        self.topic_partitions: list[int] = []  # every partition of the topic (set by plan)
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self._consumer = AIOKafkaConsumer(
            **client_kwargs(self.kafka),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",  # a start offset outside the log is an error, never a silent reset
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            isolation_level="read_uncommitted",
        )
        await self._consumer.start()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            await consumer.stop()
        except asyncio.CancelledError:
            # aiokafka's group-less coordinator lets the cancellation of its own idle task escape stop()
            # when nothing was ever assigned; re-raise only a cancellation aimed at us
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    async def partitions(self) -> list[int]:
        """The topic's partitions (TopicError when the topic does not exist)."""
        consumer = self._consumer
        deadline = time.monotonic() + METADATA_TIMEOUT_S
        while True:
            parts = consumer.partitions_for_topic(self.topic)
            if parts:
                return sorted(parts)
            if time.monotonic() >= deadline:
                raise TopicError(
                    f"topic {self.topic!r} not found on {self.kafka.bootstrap_servers} "
                    f"(no partitions after {METADATA_TIMEOUT_S:.0f}s)"
                )
            await consumer.topics()  # refreshes the metadata
            await asyncio.sleep(0.1)

    async def plan(
        self,
        rng: ReadRange,
        resume: Mapping[int, int] | None = None,
        ends: Mapping[int, int] | None = None,
        only: Collection[int] | None = None,
    ) -> dict[int, int]:
        """Assign every partition (or those in ``only``) and seek to its start: ``resume`` offsets
        first (a checkpoint), else ``rng.from_offsets``, else the log start. ``ends`` fixes the ends
        (a resumed run). Returns partition → start offset."""
        from aiokafka import TopicPartition

        consumer = self._consumer
        parts = await self.partitions()
        self.topic_partitions = parts
        unknown = sorted((set(rng.from_offsets) | set(rng.to_offsets) | set(only or ())) - set(parts))
        if unknown:
            raise TopicError(f"topic {self.topic!r} has no partition {unknown[0]} (partitions: {parts})")
        if only is not None:
            parts = sorted(only)
        tps = {p: TopicPartition(self.topic, p) for p in parts}
        consumer.assign(list(tps.values()))
        beginnings = await consumer.beginning_offsets(list(tps.values()))
        self.starts, self.ends = {}, {}
        for p, tp in tps.items():
            first = int(beginnings[tp])
            start = first
            if resume is not None and p in resume:
                start = int(resume[p])
            elif p in rng.from_offsets:
                start = max(first, int(rng.from_offsets[p]))
            consumer.seek(tp, start)
            self.starts[p] = start
            self.ends[p] = None if ends is None or p not in ends else int(ends[p])
        return dict(self.starts)

    def _end_of(self, p: int, tp: Any, rng: ReadRange) -> int | None:
        end = self.ends[p]
        if end is None:
            hw = self._consumer.highwater(tp)
            if hw is None:
                return None
            end = int(hw) if p not in rng.to_offsets else min(int(hw), int(rng.to_offsets[p]))
            self.ends[p] = end
        return end

    async def read(self, rng: ReadRange) -> AsyncIterator[ReadBatch]:
        """Yield batches until every partition reaches its end (call :meth:`plan` first)."""
        from aiokafka import TopicPartition
        from aiokafka.errors import OffsetOutOfRangeError

        consumer = self._consumer
        tps = {p: TopicPartition(self.topic, p) for p in self.starts}
        position = dict(self.starts)
        done: set[int] = set()
        last_progress = time.monotonic()
        while len(done) < len(tps):
            try:
                data = await consumer.getmany(timeout_ms=self.poll_ms, max_records=self.batch_size)
            except OffsetOutOfRangeError as exc:
                raise TopicError(
                    f"topic {self.topic!r}: start offset out of range ({exc}); the log starts at "
                    f"{await self._beginnings()}"
                ) from exc
            messages: list[Message] = []
            next_offsets: dict[int, int] = {}
            seen = 0
            for tp, records in data.items():
                p = tp.partition
                end = self._end_of(p, tp, rng)
                for r in records:
                    if end is not None and r.offset >= end:
                        break
                    seen += 1
                    position[p] = r.offset + 1
                    ts = r.timestamp
                    if (rng.from_ms is not None and ts < rng.from_ms) or (
                        rng.to_ms is not None and ts >= rng.to_ms
                    ):
                        continue
                    messages.append(Message(p, r.offset, r.key, r.value, ts))
                next_offsets[p] = position[p]
            for p, tp in tps.items():
                if p in done:
                    continue
                end = self._end_of(p, tp, rng)
                if end is None:
                    continue
                if p not in next_offsets and position[p] < end:
                    # no record this poll: trust the fetch position (skips gaps/control batches)
                    fetched = await consumer.position(tp)
                    if fetched > position[p] and not data.get(tp):
                        position[p] = min(int(fetched), end)
                        next_offsets[p] = position[p]
                if position[p] >= end:
                    done.add(p)
                    consumer.pause(tp)
                    next_offsets.setdefault(p, position[p])
            if seen or next_offsets:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > self.stall_timeout_s:
                stuck = {p: (position[p], self.ends[p]) for p in tps if p not in done}
                raise TopicError(
                    f"topic {self.topic!r}: no progress for {self.stall_timeout_s:.0f}s; "
                    f"partition → (position, end): {stuck}"
                )
            if messages or next_offsets:
                yield ReadBatch(messages, next_offsets, seen)

    async def _beginnings(self) -> dict[int, int]:
        from aiokafka import TopicPartition

        tps = [TopicPartition(self.topic, p) for p in self.starts]
        got = await self._consumer.beginning_offsets(tps)
        return {tp.partition: int(o) for tp, o in got.items()}


async def read_all(
    kafka: KafkaSettings,
    topic: str,
    rng: ReadRange | None = None,
    ends: Mapping[int, int] | None = None,
    *,
    batch_size: int = 10_000,
) -> tuple[list[Message], dict[int, int]]:
    """Every record of ``topic`` in ``rng`` up to the log end (tests, small topics). Returns
    (messages, partition → end offset used)."""
    rng = rng or ReadRange()
    reader = TopicReader(kafka, topic, batch_size=batch_size)
    await reader.start()
    try:
        await reader.plan(rng, ends=ends)
        out: list[Message] = []
        async for batch in reader.read(rng):
            out.extend(batch.messages)
        return out, {p: int(e or 0) for p, e in reader.ends.items()}
    finally:
        await reader.stop()
