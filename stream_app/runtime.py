"""The ``batch`` engine's runtime: source → pipeline → sink → checkpoint, run as a service of the Faust app.

* :class:`stream_app.source.KafkaSource` — consume, rebalance, lag, fetch watch;
* :class:`stream_app.engine.MicroBatchPipeline` — parse, features, decide, encode (the decision use case);
* :class:`stream_app.sink.DecisionSink` — publish decisions and dead letters, wait for every ack;
* :class:`stream_app.checkpoint.Checkpoint` — records acknowledged → offsets committed.

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

This engine therefore owns its consumer (the source): one aiokafka consumer with an explicit group,
manual commits of ``last offset + 1`` per partition only after every decision / dead letter of the
batch is acknowledged by the broker (the checkpoint), ``auto_offset_reset="earliest"`` (never
ListOffsets LATEST), a rebalance listener that lets the in-flight batch finish and commit before
partitions are given away, records of partitions no longer assigned discarded before processing, and
lag from the fetch responses' high watermark. Batches overlap by one: batch N is staged (parsed, one
Redis round trip) on the event loop while batch N-1 is scored on the scorer thread (the forest kernel
releases the GIL) and published. Commits run off the batch path in the checkpoint's committer task,
only ever for offsets whose records were all acknowledged, in batch order, and are flushed before
partitions are given away and on stop. After every poll the fetch watch
(:mod:`stream_app.fetch_watch`) refreshes the lag and raises the long-poll when fetches starve (records
pending, too few arriving: Tansu's memory log answers short long-polls with nothing once it is large).
Faust still runs the app (lifecycle, signals, web, settings).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from mode import Service

from credit_scorer.exceptions import StoppedError
from credit_scorer.settings import Settings
from stream_app.checkpoint import Checkpoint
from stream_app.engine import MicroBatchPipeline, PreparedBatch
from stream_app.source import KafkaSource, Polled
from stream_app.startup import JoinedConsumer

log = logging.getLogger(__name__)


class BatchRuntime(Service):
    """The loop: ``source.poll`` → ``pipeline.stage`` → [``pipeline.finish`` (scorer thread) →
    ``pipeline.deliver`` (sink: publish + acks) → ``checkpoint.acknowledged``, in a task overlapping
    the next batch's stage] → the checkpoint commits (coalescing)."""

    def __init__(
        self,
        settings: Settings,
        pipeline: MicroBatchPipeline,
        joined: JoinedConsumer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = pipeline.metrics
        self.batch_lock = asyncio.Lock()
        self.source = KafkaSource(
            settings, pipeline.metrics, pipeline.progress, pipeline.stopping, self._on_revoked, joined
        )
        self.checkpoint = Checkpoint(self.source.commit, pipeline.metrics)
        self._task: asyncio.Task[None] | None = None
        self._delivering: asyncio.Future[None] | None = None

    @property
    def batches_committed(self) -> int:
        return self.checkpoint.batches_committed

    async def on_start(self) -> None:
        await self.pipeline.start()
        await self.source.start()
        self.checkpoint.start()
        self._task = asyncio.ensure_future(self._run())

    async def on_stop(self) -> None:
        """Graceful stop: finish the in-flight batch (publish + commit), leave the group, close."""
        self.pipeline.stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self.settings.kafka.request_timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # the loop's own failure was already logged
                log.exception("batch loop ended with an error")
        try:
            await self.checkpoint.stop()  # what was delivered is committed before leaving the group
        finally:
            await self.source.stop()
            await self.pipeline.stop()

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for the in-flight batch: it is published and committed before the partitions go.
        async with self.batch_lock:
            await self.wait_deliveries()
            await self.checkpoint.flush()

    # --- the loop ---------------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while not self.pipeline.stopping.is_set():
                polled = await self.source.poll(self.checkpoint.in_flight)
                if polled.records:
                    await self._handle(polled)
            await self.wait_deliveries(raise_errors=True)
            await self.checkpoint.flush()
        except StoppedError:
            log.info("stopping with an uncommitted batch; it will be reprocessed")
            return
        except Exception as exc:  # a bug, not an outage: crash the worker, the batch stays uncommitted
            log.exception("batch processing failed; stopping the worker")
            await self.crash(exc)
            return
        log.info("batch loop stopped")

    async def _handle(self, polled: Polled) -> None:
        """Stage this batch (parse, fetch features) while the previous one is scored on the scorer
        thread and published (at most one batch behind: this returns when that one is acknowledged);
        this batch's own scoring, publishing and acknowledgement run in its delivery task.

        Offsets are acknowledged in batch order, each only after its own records *and* every earlier
        batch's were acknowledged by the broker, so a crash anywhere loses nothing.
        """
        async with self.batch_lock:
            assigned = self.source.consumer.assignment()
            if any(tp not in assigned for tp in polled.offsets):  # revoked while the lock was held
                keep = {tp for tp in polled.offsets if tp in assigned}
                polled = Polled(
                    [r for r in polled.records if TopicPartition(r.topic, r.partition) in keep],
                    {tp: off for tp, off in polled.offsets.items() if tp in keep},
                )
                if not polled.records:
                    return
            n = len(polled.records)
            self.checkpoint.fetched(n)
            progress = self.pipeline.progress  # pending now, even if this batch then hangs
            progress.pending(max(progress.pending_records, self.checkpoint.in_flight))
            started = time.perf_counter()
            staged = await self.pipeline.stage(polled.records)
            previous = self._delivering
            self._delivering = asyncio.ensure_future(
                self._deliver(staged, polled.offsets, previous, started, n)
            )
            if previous is not None:
                await previous  # raises if that batch failed: nothing after it is committed

    async def _deliver(
        self,
        staged: PreparedBatch,
        offsets: dict[TopicPartition, int],
        previous: asyncio.Future[None] | None,
        started: float,
        n_records: int,
    ) -> None:
        prepared = await self.pipeline.finish(staged)  # the scorer thread takes batches in order
        await self.pipeline.deliver(prepared)
        if previous is not None:
            await previous  # acknowledgement order = batch order
        self.checkpoint.acknowledged(offsets, n_records)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def wait_deliveries(self, raise_errors: bool = False) -> None:
        """Wait until the last scheduled batch is published and acknowledged."""
        pending = self._delivering
        if pending is None:
            return
        try:
            await asyncio.shield(pending)
        except Exception:
            if raise_errors:
                raise
            log.warning("a batch was not delivered; it will be reprocessed")
