"""The ``batch`` engine: a plain aiokafka micro-batch loop, run as a service of the Faust app.

Why not Faust's own consumer for the hot path (the cause of the message loss seen on Tansu)
-----------------------------------------------------------------------------------------------
Faust 0.15.3 keeps its own per-partition bookkeeping next to aiokafka's: ``_read_offset`` (last offset
handed to a stream), ``_acked`` and a ``_gap`` interval tree, and commits ``_new_offset(tp)`` computed
from them (``faust/transport/consumer.py``). After a rebalance, recovery calls
``Consumer.perform_seek()`` ("Seek stream partitions to committed offsets", ``faust/tables/
recovery.py``), which moves aiokafka back to the committed offset C and sets ``_read_offset[tp] = C``.
But the records of the last ``getmany`` are still being iterated by ``_drain_messages``: the
generation-id check in ``Consumer.getmany`` only stops that iterator when the *generation* changes, and
a seek inside one generation does not change it. So a stale record with offset C+k (k ≈ 10–13, what
had been fetched) is delivered after the seek; ``_drain_messages`` sees ``offset - _read_offset > 1``
and calls ``_add_gap(tp, C+1, C+k)`` — a mechanism meant for compacted topics and transaction markers
that marks offsets C+1…C+k as *acknowledged* although no stream ever saw them — then sets
``_read_offset = C+k``. When aiokafka re-fetches C…C+k-1 from the seek position they are dropped
("DROPPED MESSAGE ROFF", ``offset < _read_offset``) and the next commit (``_new_offset`` merges the gap
into ``_acked``) jumps past them: lost. When offset C itself is the one dropped, ``_new_offset`` finds
``min(acked) - committed > 1`` forever and the committed offset stops advancing (the second symptom).
Tansu's wrong ListOffsets LATEST (base offset of the last record batch + 1) makes it worse wherever an
end offset is asked (``highwaters()``/``end_offsets`` in recovery and the monitor, or an
``auto_offset_reset="latest"``), but the loss is the stale-iterator + gap bookkeeping above.

This engine therefore owns its consumer: one aiokafka consumer with an explicit group, manual
commits of ``last offset + 1`` per partition only after every decision / dead letter of the batch is
acknowledged by the broker, ``auto_offset_reset="earliest"`` (never ListOffsets LATEST), a rebalance
listener that lets the in-flight batch finish and commit before partitions are given away, records of
partitions no longer assigned discarded before processing, and lag from the fetch responses' high
watermark. Batches overlap by one: batch N is staged (parsed, one Redis round trip) on the event loop
while batch N-1 is scored on the scorer thread (LightGBM releases the GIL) and published. Commits run
off the batch path in one committer task (one commit in flight; the batches delivered meanwhile go into
the next one), only ever for offsets whose records were all acknowledged, in batch order, and are
flushed before partitions are given away and on stop. After every poll the fetch watch
(:mod:`stream_app.fetch_watch`) refreshes the lag and raises the long-poll when fetches starve (records
pending, too few arriving: Tansu's memory log answers short long-polls with nothing once it is large).
Faust still runs the app (lifecycle, signals, web, settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, RebalanceInProgressError
from mode import Service

from credit_scorer.settings import Settings
from kafka_io.config import consumer_kwargs
from kafka_io.records import InboundRecord
from stream_app.engine import MicroBatchPipeline, PreparedBatch
from stream_app.exceptions import EngineStoppedError
from stream_app.fetch_watch import FetchWatch
from stream_app.retry import Backoff

log = logging.getLogger(__name__)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: BatchEngineService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for the in-flight batch: it is published and committed before the partitions go.
        async with self.service.batch_lock:
            await self.service.wait_deliveries()
            await self.service.flush_commits()
            self.service.forget_partitions(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned partitions: %s", sorted(tp.partition for tp in assigned))


class BatchEngineService(Service):
    """aiokafka consumer loop: getmany → pipeline.stage → [pipeline.finish (scorer thread) →
    pipeline.deliver (publish + acks), in a task overlapping the next batch's stage] → commit (the
    committer task, coalescing)."""

    def __init__(self, settings: Settings, pipeline: MicroBatchPipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = pipeline.metrics
        self.batch_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._delivering: asyncio.Future[None] | None = None
        self._uncommitted = 0
        self.batches_committed = 0
        # delivered (every record acknowledged), not yet committed: next offset per partition
        self._acked: dict[TopicPartition, int] = {}
        self._acked_records = self._acked_batches = 0
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._committer: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        kafka = self.settings.kafka
        await self.pipeline.start()
        self._consumer = AIOKafkaConsumer(
            **consumer_kwargs(kafka, self.settings.stream.batch_max, self.settings.stream.fetch_max_wait_ms)
        )
        self._consumer.subscribe([kafka.applications_topic], listener=_Listener(self))
        await self._consumer.start()
        self._committer = asyncio.ensure_future(self._commit_loop(self._consumer))
        self._task = asyncio.ensure_future(self._run())

    async def on_stop(self) -> None:
        """Graceful stop: finish the in-flight batch (publish + commit), leave the group, close."""
        self._stopping.set()
        self.pipeline.stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self.settings.kafka.request_timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # the loop's own failure was already logged
                log.exception("batch loop ended with an error")
        if self._consumer is not None:
            try:
                await self.flush_commits()  # what was delivered is committed before leaving the group
            finally:
                if self._committer is not None:
                    self._committer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._committer
            await self._consumer.stop()
        await self.pipeline.stop()

    # --- the loop ---------------------------------------------------------------------------------------
    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        stream = self.settings.stream
        timeout_ms = max(1, int(stream.batch_within_s * 1000))
        backoff = Backoff(stream.retry_initial_s, stream.retry_max_s)
        watch = FetchWatch(stream, self.metrics, self.pipeline.progress)
        failures = 0
        try:
            while not self._stopping.is_set():
                polled_at = time.monotonic()
                try:
                    data = await consumer.getmany(timeout_ms=timeout_ms, max_records=stream.batch_max)
                    failures = 0
                except KafkaError as exc:
                    failures += 1
                    self.metrics.retries.labels("kafka").inc()
                    log.warning("fetch failed (%s); retry %d", exc, failures)
                    await self._sleep_or_stop(backoff.delay(failures))
                    continue
                waited = time.monotonic() - polled_at
                fetched = sum(len(msgs) for msgs in data.values())
                if data:
                    await self._handle(consumer, data)
                watch.observe(consumer, fetched, waited, self._uncommitted)
            await self.wait_deliveries(raise_errors=True)
            await self.flush_commits()
        except EngineStoppedError:
            log.info("stopping with an uncommitted batch; it will be reprocessed")
            return
        except Exception as exc:  # a bug, not an outage: crash the worker, the batch stays uncommitted
            log.exception("batch processing failed; stopping the worker")
            await self.crash(exc)
            return
        log.info("batch loop stopped")

    async def _handle(self, consumer: AIOKafkaConsumer, data: dict[TopicPartition, list[Any]]) -> None:
        """Stage this batch (parse, fetch features) while the previous one is scored on the scorer
        thread and published (at most one batch behind: this returns when that one is committed);
        this batch's own scoring, publishing and commit run in its delivery task.

        Offsets are committed in batch order, each only after its own records *and* every earlier
        batch's were acknowledged and committed, so a crash anywhere loses nothing.
        """
        async with self.batch_lock:
            assigned = consumer.assignment()
            records: list[InboundRecord] = []
            offsets: dict[TopicPartition, int] = {}
            for tp, msgs in data.items():
                if tp not in assigned or not msgs:
                    continue  # revoked while we waited: its new owner reprocesses it
                offsets[tp] = msgs[-1].offset + 1
                records.extend(
                    InboundRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp) for m in msgs
                )
            if not records:
                return
            self._uncommitted += len(records)
            self.metrics.in_flight.set(self._uncommitted)
            progress = self.pipeline.progress  # pending now, even if this batch then hangs
            progress.pending(max(progress.pending_records, self._uncommitted))
            started = time.perf_counter()
            staged = await self.pipeline.stage(records)
            previous = self._delivering
            self._delivering = asyncio.ensure_future(
                self._deliver(consumer, staged, offsets, previous, started, len(records))
            )
            if previous is not None:
                await previous  # raises if that batch failed: nothing after it is committed

    async def _deliver(
        self,
        consumer: AIOKafkaConsumer,
        staged: PreparedBatch,
        offsets: dict[TopicPartition, int],
        previous: asyncio.Future[None] | None,
        started: float,
        n_records: int,
    ) -> None:
        prepared = await self.pipeline.finish(staged)  # the scorer thread takes batches in order
        await self.pipeline.deliver(prepared)
        if previous is not None:
            await previous  # commit order = batch order
        self._acked.update(offsets)  # batch order: each partition's offset only moves forward
        self._acked_records += n_records
        self._acked_batches += 1
        self._commit_wanted.set()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def wait_deliveries(self, raise_errors: bool = False) -> None:
        """Wait until the last scheduled batch is published and committed."""
        pending = self._delivering
        if pending is None:
            return
        try:
            await asyncio.shield(pending)
        except Exception:
            if raise_errors:
                raise
            log.warning("a batch was not delivered; it will be reprocessed")

    async def _commit_loop(self, consumer: AIOKafkaConsumer) -> None:
        """Commit the delivered offsets off the batch path: one commit in flight, and every batch
        delivered meanwhile goes into the next one (fewer broker round trips, none on the path of a
        batch). Only offsets whose records were all acknowledged ever get here."""
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self.flush_commits(consumer)

    async def flush_commits(self, consumer: AIOKafkaConsumer | None = None) -> None:
        """Commit every delivered batch's offsets now (rebalance, stop); returns when done."""
        consumer = consumer or self._consumer
        if consumer is None:
            return
        async with self._commit_lock:
            if not self._acked:
                return
            offsets, self._acked = self._acked, {}
            records, batches = self._acked_records, self._acked_batches
            self._acked_records = self._acked_batches = 0
            await self._commit(consumer, offsets)
            self._uncommitted -= records
            self.metrics.in_flight.set(self._uncommitted)
            self.batches_committed += batches

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        backoff = Backoff(self.settings.stream.retry_initial_s, self.settings.stream.retry_max_s)
        attempt = 0
        while True:
            current = {tp: off for tp, off in offsets.items() if tp in consumer.assignment()}
            if not current:
                return
            try:
                await consumer.commit(current)
                return
            except (CommitFailedError, RebalanceInProgressError, IllegalStateError) as exc:
                # Membership changed: the new owner restarts from the last commit (duplicates, no loss).
                log.warning("commit abandoned after a rebalance (%s); the batch may be redelivered", exc)
                return
            except KafkaError as exc:
                attempt += 1
                self.metrics.retries.labels("kafka").inc()
                log.warning("commit failed (%s); retry %d", exc, attempt)
                if self._stopping.is_set() and attempt >= 3:
                    return
                await asyncio.sleep(backoff.delay(attempt))

    async def _sleep_or_stop(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    # --- lag ------------------------------------------------------------------------------------------
    def forget_partitions(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(tp.topic, str(tp.partition))
