"""A Faust (aiokafka driver) consumer that does not lose the records fetched before a seek.

The loss (see :mod:`stream_app.runtime` for the full account): ``Consumer.getmany`` captures
the consumer generation only *after* ``_wait_next_records`` returned, so records fetched before a
rebalance/seek — from the old, fetched-ahead position P — are yielded after
``perform_seek()`` moved ``_read_offset`` back to the committed offset C. ``_drain_messages`` then
takes the jump C→P for a compaction gap and ``_add_gap`` marks C+1…P as acknowledged; the re-fetched
C…P-1 are dropped as already read, and the next commit passes over them.

Two overrides close it:

* ``_wait_next_records`` drops a partition's fetched records when they start past the next expected
  offset — fetched from the position before the seek (aiokafka re-fetches from the sought offset);
* ``_add_gap`` does nothing: the applications topic is neither compacted nor transactional (Tansu has
  no transactions), so a jump in offsets is never a legitimate gap, and committing over one would lose
  records. Without a gap, Faust's commit cannot pass an unprocessed offset (``_new_offset`` needs a
  contiguous run from the committed offset).
"""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import StreamSettings
from stream_app.fetch_watch import FetchWatch
from stream_app.stall import ProgressWatch

WATCH_EVERY_S = 0.25


class GuardedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):  # type: ignore[misc]
    """Faust's consumer thread with the worker's long-poll (Faust hard-codes ``fetch_max_wait_ms=1500``);
    :class:`FaustFetchWatch` raises it when fetches starve, as the batch engine does."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = wait_ms  # read by aiokafka when it starts its fetcher
        return consumer


class SeekSafeConsumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    def _new_consumer_thread(self) -> Any:
        return GuardedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        if records:
            stale = [tp for tp, recs in records.items() if recs and self._is_stale(tp, recs[0].offset)]
            if stale:
                self.log.info(
                    "dropping records fetched before a seek (aiokafka re-fetches them): %s",
                    {f"{tp.topic}:{tp.partition}": records[tp][0].offset for tp in stale},
                )
                records = {tp: recs for tp, recs in records.items() if tp not in stale}
        return records, active

    def _is_stale(self, tp: Any, first_offset: int) -> bool:
        """A batch starting past the next expected offset was fetched from a position since sought away.

        ``_read_offset`` is the committed offset right after a seek (next to read) and the last offset
        handed to a stream otherwise; offsets of these topics are contiguous (no compaction, no
        transaction markers), so anything beyond ``read + 1`` did not come from the current position.
        """
        read = self._read_offset.get(tp)
        return read is not None and first_offset > read + 1

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        return None


class SeekSafeTransport(faust_aiokafka.Transport):  # type: ignore[misc]
    Consumer = SeekSafeConsumer


class SeekSafeApp(faust.App):
    """faust.App whose Kafka transport uses :class:`SeekSafeConsumer` (long-poll: ``fetch_max_wait_ms``)."""

    fetch_max_wait_ms: int | None = None

    def _new_transport(self) -> Any:
        return SeekSafeTransport(self.conf.broker_consumer, self)


class FaustFetchWatch(Service):
    """The fetch watch of the ``faust`` engine: every ``WATCH_EVERY_S`` it reads the lag of Faust's
    aiokafka consumer (on the consumer thread) and feeds :class:`FetchWatch` with the records the
    pipeline handled and the time it spent waiting for them (wall time less time inside the pipeline)."""

    def __init__(
        self,
        app: faust.App,
        pipeline: Any,  # stream_app.engine.MicroBatchPipeline (busy_s, handled_records, progress)
        stream: StreamSettings,
        metrics: ScorerMetrics,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.pipeline = pipeline
        progress: ProgressWatch = pipeline.progress
        self.watch = FetchWatch(stream, metrics, progress)
        self._mark = (time.monotonic(), 0.0, 0)

    def _consumer_thread(self) -> Any:
        consumer = getattr(self.app, "_consumer", None)  # not created before the app starts
        return getattr(consumer, "_thread", None)

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(WATCH_EVERY_S)
            thread = self._consumer_thread()
            client = getattr(thread, "_consumer", None)
            if client is None or getattr(client, "_fetcher", None) is None:
                continue
            now, busy, handled = time.monotonic(), self.pipeline.busy_s, self.pipeline.handled_records
            then, busy0, handled0 = self._mark
            self._mark = (now, busy, handled)
            waited = max(0.0, (now - then) - (busy - busy0))

            def seek(tp: Any, offset: int, client: Any = client, loop: Any = thread.thread_loop) -> None:
                loop.call_soon_threadsafe(client.seek, tp, offset)  # aiokafka state lives on that loop

            self.watch.observe(client, handled - handled0, waited, 0, seek=seek)
