"""Stream loan applications to a broker at a steady rate: from a CSV(.gz) file or synthetic.

Each row becomes one ``LoanApplication`` event (schemas/events.py, contract version 2: the whole
application form, every application column of the row, empty cells as null), keyed by its
``application_id``; ``event_time`` is stamped when the event is handed to the producer, so the worker's
event→decision latency starts there. Rows come from :mod:`devtools.application_sources` (CSV or
synthetic, validated against the event schema before anything is sent).

Pacing is by absolute schedule (event ``i`` is due at ``t0 + i / rate``), sent in small bursts, so the
achieved rate does not drift with the event loop's timer resolution. ``rate=0`` sends as fast as the
broker accepts.

Optionally every ``bad_every``-th event is replaced by a deliberately malformed payload (bad JSON,
schema violation, out-of-range or non-finite amount) to exercise the dead-letter path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from devtools.application_sources import (
    ApplicationRow,
    read_csv_applications,
    synthetic_applications,
)
from devtools.exceptions import ProducerError, ProducerInputError
from kafka_io.exceptions import RecordTooLargeError
from kafka_io.partitioner import group_by_partition
from kafka_io.sender import send_records

__all__ = [
    "MALFORMED_PAYLOADS",
    "ApplicationRow",
    "EventFactory",
    "ProduceSummary",
    "produce",
    "read_csv_applications",
    "send_at_rate",
    "start_producer",
    "synthetic_applications",
]

MALFORMED_PAYLOADS: tuple[bytes, ...] = (
    b'{"sk_id_curr": 100001, "AMT_CREDIT": ',  # bad JSON (truncated)
    b'{"sk_id_curr": "not-a-number"}',  # schema: wrong type
    b'{"sk_id_curr": 100001, "AMT_CREDIT": -5000.0}',  # out of range: negative amount
    b'{"sk_id_curr": 100001, "AMT_ANNUITY": NaN}',  # non-finite
    b'{"AMT_CREDIT": 250000.0}',  # schema: no client id
)


# --- events ------------------------------------------------------------------------------------------
class EventFactory:
    """Turns rows into (key, payload) pairs with unique ids and the send-time event_time."""

    def __init__(self, run_id: str | None = None, bad_every: int = 0) -> None:
        from schemas.events import APPLICATION_VERSION

        if bad_every < 0:
            raise ProducerInputError(f"bad_every must be >= 0, got {bad_every}")
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.bad_every = bad_every
        self.schema_version = APPLICATION_VERSION
        self.seq = 0
        self.malformed = 0

    def make(self, row: ApplicationRow) -> tuple[bytes, bytes]:
        self.seq += 1
        app_id = f"{self.run_id}-{self.seq}"
        if self.bad_every and self.seq % self.bad_every == 0:
            payload = MALFORMED_PAYLOADS[self.malformed % len(MALFORMED_PAYLOADS)]
            self.malformed += 1
            return app_id.encode(), payload
        envelope = {
            "event_id": f"e-{app_id}",
            "application_id": app_id,
            "sk_id_curr": row.sk_id_curr,
            "event_time": datetime.now(UTC),  # orjson writes RFC 3339
            "schema_version": self.schema_version,
        }
        # the form is already a JSON object: spliced in after the envelope, not encoded again
        head = orjson.dumps(envelope)
        if row.form == b"{}":
            return app_id.encode(), head
        return app_id.encode(), head[:-1] + b"," + row.form[1:]


def cycle_rows(rows: Sequence[ApplicationRow], repeat: bool) -> Iterator[ApplicationRow]:
    return itertools.cycle(rows) if repeat else iter(rows)


# --- sending -----------------------------------------------------------------------------------------
@dataclass
class ProduceSummary:
    sent: int = 0
    malformed: int = 0
    failed: int = 0
    seconds: float = 0.0
    target_rate: float = 0.0
    first_error: str | None = None
    application_ids: list[str] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else math.nan


ProgressCallback = Callable[[ProduceSummary], None]


async def start_producer(bootstrap_servers: str, *, linger_ms: int = 0, timeout_s: float = 15.0) -> Any:
    """A started AIOKafkaProducer (ProducerError naming the broker when it cannot connect)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        linger_ms=linger_ms,
        acks=1,
        request_timeout_ms=int(timeout_s * 1000),
        max_batch_size=256 * 1024,
    )
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise ProducerError(
            f"cannot connect to the broker at {bootstrap_servers}: {exc or type(exc).__name__}"
        ) from None
    return producer


class BatchSender:
    """Sends bursts of (key, value) as record batches per partition (:func:`kafka_io.sender.send_records`).

    Partitions are chosen exactly as ``producer.send`` would (murmur2 of the key, the Java client's and
    aiokafka's default partitioner), so keyed ordering is unchanged, at a fraction of the per-record cost.
    """

    def __init__(self, producer: Any, topic: str, partitions: Sequence[int]) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = sorted(partitions)
        self.pending: list[tuple[asyncio.Future[Any], int]] = []  # (delivery future, records)

    @classmethod
    async def create(cls, producer: Any, topic: str) -> BatchSender:
        partitions = await producer.partitions_for(topic)
        if not partitions:
            raise ProducerError(f"topic {topic} has no partitions")
        return cls(producer, topic, sorted(partitions))

    async def send(self, burst: Sequence[tuple[bytes, bytes]]) -> None:
        for group in group_by_partition(self.topic, burst, self.partitions):
            try:
                sent = await send_records(self.producer, self.topic, group.partition, group.records)
            except RecordTooLargeError as exc:
                raise ProducerInputError(f"{self.topic}: {exc}") from None
            self.pending.extend((s.future, s.count) for s in sent)

    async def drain(self, summary: ProduceSummary) -> None:
        """Wait for every submitted batch; failed records are counted in ``summary``."""
        pending, self.pending = self.pending, []
        results = await asyncio.gather(*(f for f, _ in pending), return_exceptions=True)
        for (_, count), res in zip(pending, results, strict=True):
            if isinstance(res, BaseException):
                summary.failed += count
                summary.first_error = summary.first_error or f"{type(res).__name__}: {res}"

    @property
    def in_flight(self) -> int:
        return sum(n for _, n in self.pending)


async def send_at_rate(
    producer: Any,
    topic: str,
    events: Iterable[tuple[bytes, bytes]],
    *,
    rate: float,
    limit: int | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    on_progress: ProgressCallback | None = None,
    progress_every_s: float = 0.5,
    max_in_flight: int = 20_000,
    keep_ids: bool = False,
) -> ProduceSummary:
    """Send ``events`` at ``rate``/s (0 = unthrottled).

    Stops when the events are exhausted, or at ``limit`` events, ``duration_s`` seconds or ``stop``.
    Event ``i`` is due at ``t0 + i / rate``: each loop sends every event due by now as one burst.
    """
    if rate < 0 or not math.isfinite(rate):
        raise ProducerInputError(f"rate must be a finite number >= 0, got {rate}")
    summary = ProduceSummary(target_rate=rate)
    sender = await BatchSender.create(producer, topic)
    it = iter(events)
    t0 = time.monotonic()
    last_progress = t0
    exhausted = False
    while not exhausted:
        elapsed = time.monotonic() - t0
        if (stop is not None and stop.is_set()) or (duration_s is not None and elapsed >= duration_s):
            break
        due = summary.sent + 5000 if rate == 0 else int(elapsed * rate) + 1
        if limit is not None:
            due = min(due, limit)
        burst = list(itertools.islice(it, max(0, due - summary.sent)))
        exhausted = len(burst) < due - summary.sent or (limit is not None and due >= limit)
        if burst:
            await sender.send(burst)
            summary.sent += len(burst)
            if keep_ids:
                summary.application_ids.extend(key.decode() for key, _ in burst)
        if rate == 0 or sender.in_flight >= max_in_flight:
            await sender.drain(summary)
        now = time.monotonic()
        if on_progress is not None and now - last_progress >= progress_every_s:
            last_progress = now
            summary.seconds = now - t0
            on_progress(summary)
        if not exhausted and rate > 0:
            next_due = t0 + (summary.sent + 1) / rate
            await asyncio.sleep(max(0.002, next_due - time.monotonic()))
    await sender.drain(summary)
    summary.seconds = time.monotonic() - t0
    if on_progress is not None:
        on_progress(summary)
    return summary


async def produce(
    bootstrap_servers: str,
    topic: str,
    rows: Sequence[ApplicationRow],
    *,
    rate: float,
    limit: int | None = None,
    duration_s: float | None = None,
    repeat: bool = False,
    bad_every: int = 0,
    stop: asyncio.Event | None = None,
    on_progress: ProgressCallback | None = None,
    keep_ids: bool = False,
) -> ProduceSummary:
    """Connect, stream ``rows`` as LoanApplication events and close: the whole producer in one call."""
    factory = EventFactory(bad_every=bad_every)
    events = (factory.make(row) for row in cycle_rows(rows, repeat))
    producer = await start_producer(bootstrap_servers)
    try:
        summary = await send_at_rate(
            producer,
            topic,
            events,
            rate=rate,
            limit=limit,
            duration_s=duration_s,
            stop=stop,
            on_progress=on_progress,
            keep_ids=keep_ids,
        )
    finally:
        await producer.stop()
    summary.malformed = factory.malformed
    return summary
