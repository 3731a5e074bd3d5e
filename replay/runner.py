"""The replay run: read applications → fetch client features → rescore → publish → rows + checkpoint.

Each batch goes through the same path as the live worker (:func:`schemas.codec.parse_application`, the
Redis feature source read in the model's feature version with the worker's retry policy,
:func:`scoring.decide.decide`, :func:`scoring.decision.decision_bytes`), so replaying with the live model
reproduces the live decisions.
Rescored decisions go to ``settings.kafka.replay_topic``, marked ``is_replay`` and carrying the model
version, label and probability of the decision compared with (joined by application id): the live one,
or another model version's on the same batch (``against``, :mod:`replay.reference`). Records that are
not valid applications are counted (the live worker dead-lettered them), never fatal.

Stopping (``stop`` event, set by the CLI on Ctrl-C / SIGTERM) finishes the batch in hand, waits for the
broker's acks, writes the checkpoint and returns ``interrupted``; a later run with ``resume=True``
continues from the checkpoint and ends with the same rows (see :mod:`replay.checkpoint`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from credit_scorer.exceptions import StoppedError
from credit_scorer.memory import keep_freed_memory
from credit_scorer.settings import Settings
from kafka_io.records import Record
from replay.checkpoint import Checkpoint, CheckpointStore, RowBuffer
from replay.exceptions import CheckpointError, ReplayError
from replay.publish import publish_records
from replay.reader import Message, ReadBatch, ReadRange, TopicReader
from replay.reference import LiveReference, Reference, VersionReference
from replay.rescore import Prepared, replay_outputs
from schemas.codec import parse_application
from schemas.events import LoanApplication
from schemas.exceptions import InvalidEvent
from scoring.decide import DecideOptions, ReasonsMode, decide
from scoring.decision import StageTimings
from scoring.features import FeatureSource
from scoring.prepared import PreparedModel

STAGES = ("baseline", "read", "parse", "features", "score", "encode", "publish")


@dataclass(frozen=True)
class ReplayOptions:
    out_dir: Path
    read_range: ReadRange = field(default_factory=ReadRange)
    batch_size: int = 5_000
    reasons: ReasonsMode = "none"
    top_reasons: int = 4
    resume: bool = False
    publish: bool = True
    checkpoint_every_s: float = 5.0
    num_threads: int = 0  # scoring threads for the big replay batches (0 = all cores)
    workers: int = 1  # processes (replay.parallel.ParallelReplayer; this class runs one)
    counter_offers: bool = False  # a counter-offer on every REFUS by score (as the worker's, when on)
    # registry versions of the replay model and of the model compared with (None: a folder, or live)
    registry_versions: tuple[str | None, str | None] = (None, None)


@dataclass
class ReplayResult:
    status: Literal["complete", "interrupted"]
    out_dir: Path
    consumed: int  # log records consumed (in range or not) over all runs of this checkpoint
    total: int | None  # records between the start offsets and the log ends (None: ends not all known)
    rescored: int  # this run
    counts: dict[str, int]
    stage_seconds: dict[str, float]
    seconds: float


ProgressFn = Callable[[int, int | None], None]


class Replayer:
    """One replay run into ``options.out_dir`` (clients created in :meth:`run`, closed at its end)."""

    def __init__(
        self,
        settings: Settings,
        model: PreparedModel,
        options: ReplayOptions,
        *,
        stop: asyncio.Event | None = None,
        progress: ProgressFn | None = None,
        on_batch: Callable[[int], None] | None = None,
        partitions: Collection[int] | None = None,
        against: PreparedModel | None = None,
    ) -> None:
        self.settings = settings
        self.against = against  # None: compare with the live decisions (replay.reference)
        self.partitions = None if partitions is None else sorted(partitions)  # None: every partition
        self.model = model
        self.options = options
        self.decide_options = DecideOptions(
            options.reasons, options.top_reasons, options.num_threads, counter_offers=options.counter_offers
        )
        self.stop = stop or asyncio.Event()
        self.progress = progress
        self.on_batch = on_batch
        self.store = CheckpointStore(options.out_dir)
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)
        self._source_partitions: list[int] = []
        self.counts: dict[str, int] = {}

    def params(self) -> dict[str, Any]:
        k = self.settings.kafka
        return {
            "applications_topic": k.applications_topic,
            "decisions_topic": k.decisions_topic,
            "replay_topic": k.replay_topic if self.options.publish else None,
            "model_version": self.model.model_version,
            "feature_version": self.model.feature_version,
            "against_model_version": None if self.against is None else self.against.model_version,
            "registry_version": self.options.registry_versions[0],
            "against_registry_version": self.options.registry_versions[1],
            "range": self.options.read_range.describe(),
        }

    def _open_checkpoint(self) -> Checkpoint:
        params = self.params()
        if not self.store.exists():
            return Checkpoint(params=params)
        if not self.options.resume:
            raise CheckpointError(
                f"{self.store.path} exists: pass --resume to continue that replay, or choose another --out"
            )
        checkpoint = self.store.load()
        checkpoint.check_params(params, self.store.path)
        return checkpoint

    async def run(self) -> ReplayResult:
        started = time.perf_counter()
        keep_freed_memory()  # the process's heap stays warm between batches (inherited by workers)
        checkpoint = self._open_checkpoint()
        if checkpoint.complete:
            self.counts = dict(checkpoint.counts)
            return self._result("complete", checkpoint, 0, started)
        self.options.out_dir.mkdir(parents=True, exist_ok=True)
        return await self.execute(checkpoint, started)

    async def execute(self, checkpoint: Checkpoint, started: float) -> ReplayResult:
        """Replay from ``checkpoint`` (the partitions given to the constructor, else all of them)."""
        from aiokafka import AIOKafkaProducer

        from credit_scorer.retry import Backoff
        from feature_cache.exceptions import FeatureCacheError
        from feature_cache.source import RedisFeatureSource
        from kafka_io.config import producer_kwargs
        from kafka_io.sender import RecordPublisher

        self.counts = dict(checkpoint.counts)
        kafka = self.settings.kafka
        backoff = Backoff.from_settings(self.settings.stream)  # the worker's: wait out a Redis outage
        features = RedisFeatureSource(
            self.settings.redis, self.model.feature_version, backoff, expect_live=False
        )
        reader = TopicReader(kafka, kafka.applications_topic, batch_size=self.options.batch_size)
        producer: Any = None
        reference = self._reference()
        try:
            await features.start()
            try:
                await features.check_loaded()  # the model's version loaded and complete? (no retry)
            except FeatureCacheError as exc:
                raise ReplayError(f"feature cache: {exc}") from exc
            if self.options.publish:
                producer = AIOKafkaProducer(**producer_kwargs(kafka))
                await producer.start()
            publisher = RecordPublisher(producer) if producer is not None else None
            await reader.start()
            await reader.plan(
                self.options.read_range,
                resume=checkpoint.next_offsets or None,
                ends=checkpoint.ends or None,
                only=self.partitions,
            )
            self._source_partitions = reader.topic_partitions
            # the live decisions (if compared with) are read while the first batches are scored
            reference.start(checkpoint, sorted(reader.starts), self._source_partitions)
            if not checkpoint.starts:
                checkpoint.starts = dict(reader.starts)
            status, rescored = await self._loop(reader, features, reference, publisher, checkpoint)
            return self._result(status, checkpoint, rescored, started)
        finally:
            await reference.close()
            await reader.stop()
            if producer is not None:
                await producer.stop()
            await features.stop()

    def _reference(self) -> Reference:
        """What the rescored decisions are compared with (replay.reference)."""
        if self.against is not None:
            return VersionReference(self.against, self.stage_seconds, self.options.num_threads)
        return LiveReference(self.settings.kafka, self.stage_seconds, aligned=self.partitions is not None)

    async def _front(
        self,
        reader: TopicReader,
        features: FeatureSource,
        queue: asyncio.Queue[tuple[ReadBatch, Prepared | None] | None],
        exhausted: asyncio.Event,
    ) -> None:
        """The front stage of :meth:`_loop`: read, parse and fetch features ahead, then an end mark."""
        batches = reader.read(self.options.read_range).__aiter__()
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    batch = await batches.__anext__()
                except StopAsyncIteration:
                    exhausted.set()
                    break
                self.stage_seconds["read"] += time.perf_counter() - t0
                try:
                    prepared = await self._prepare(batch.messages, features)
                except StoppedError:  # stopped while Redis was away: this batch is not done
                    break
                await queue.put((batch, prepared))
        except asyncio.CancelledError:
            raise  # the consumer stopped (Ctrl-C or its own failure): nobody waits for the end mark
        except BaseException:
            await queue.put(None)  # wake the consumer: it re-raises this through `await front_task`
            raise
        finally:
            await batches.aclose()  # type: ignore[attr-defined]
        await queue.put(None)

    async def _loop(
        self,
        reader: TopicReader,
        features: FeatureSource,
        reference: Reference,
        publisher: Any,
        checkpoint: Checkpoint,
    ) -> tuple[Literal["complete", "interrupted"], int]:
        """Two overlapping stages: the front task reads, parses and fetches features for the next
        batches while this one rescores (LightGBM releases the GIL), encodes, publishes and checkpoints."""
        queue: asyncio.Queue[tuple[ReadBatch, Prepared | None] | None] = asyncio.Queue(maxsize=3)
        exhausted = asyncio.Event()

        rows = RowBuffer()
        pending: asyncio.Task[None] | None = None
        rescored = 0
        next_save = time.monotonic() + self.options.checkpoint_every_s
        front_task = asyncio.create_task(self._front(reader, features, queue, exhausted))
        interrupted = False
        try:
            while (item := await queue.get()) is not None:
                batch, prepared = item
                records: list[Record] = []
                sources: list[int] = []
                if prepared is not None:
                    for key, n in prepared.invalid.items():
                        self._count(key, n)
                    if prepared.cached is not None:
                        records, sources = await self._finish(prepared, reference, rows)
                rescored += len(records)
                if pending is not None:
                    await self._await_publish(pending)
                    pending = None
                if publisher is not None and records:
                    pending = asyncio.create_task(self._publish(publisher, records, sources))
                self._advance(checkpoint, batch, reader)
                if self.on_batch is not None:
                    self.on_batch(rescored)
                if time.monotonic() >= next_save:
                    if pending is not None:
                        await self._await_publish(pending)
                        pending = None
                    self._save(checkpoint, rows)
                    next_save = time.monotonic() + self.options.checkpoint_every_s
                if self.stop.is_set():  # Ctrl-C: this batch is done; batches read ahead are dropped
                    interrupted = True  # (not in the checkpoint, so a resumed run reads them again)
                    break
            if not interrupted:
                await front_task  # re-raises a read/parse/fetch failure
            await reference.finish()  # its log ends go into the checkpoint, even with no application read
            if pending is not None:
                await self._await_publish(pending)
        finally:
            if not front_task.done():
                front_task.cancel()
                await asyncio.gather(front_task, return_exceptions=True)
        complete = exhausted.is_set() and not interrupted
        status: Literal["complete", "interrupted"] = "complete" if complete else "interrupted"
        checkpoint.complete = status == "complete"
        self._save(checkpoint, rows)
        return status, rescored

    def _advance(self, checkpoint: Checkpoint, batch: ReadBatch, reader: TopicReader) -> None:
        checkpoint.next_offsets.update(batch.next_offsets)
        checkpoint.ends.update({p: e for p, e in reader.ends.items() if e is not None})
        if self.progress is not None:
            self.progress(*self._consumed(checkpoint))

    @staticmethod
    def _consumed(checkpoint: Checkpoint) -> tuple[int, int | None]:
        """(log records consumed so far, records in the whole range or None while an end is unknown)."""
        starts, ends = checkpoint.starts, checkpoint.ends
        consumed = sum(checkpoint.next_offsets.get(p, start) - start for p, start in starts.items())
        total = (
            sum(ends[p] - start for p, start in starts.items()) if all(p in ends for p in starts) else None
        )
        return consumed, total

    def _save(self, checkpoint: Checkpoint, rows: RowBuffer) -> None:
        checkpoint.counts = dict(self.counts)
        self.store.save(checkpoint, rows)

    def _result(
        self,
        status: Literal["complete", "interrupted"],
        checkpoint: Checkpoint,
        rescored: int,
        started: float,
    ) -> ReplayResult:
        consumed, total = self._consumed(checkpoint)
        return ReplayResult(
            status=status,
            out_dir=self.options.out_dir,
            consumed=consumed,
            total=total,
            rescored=rescored,
            counts=dict(self.counts),
            stage_seconds=dict(self.stage_seconds),
            seconds=time.perf_counter() - started,
        )

    # --- one batch ------------------------------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    async def _prepare(self, messages: list[Message], features: FeatureSource) -> Prepared | None:
        """Parse the batch's applications and fetch their clients' features (one MGET)."""
        if not messages:
            return None
        t0 = time.perf_counter()
        consumed_at = time.time()
        max_bytes = self.settings.stream.max_payload_bytes
        apps: list[LoanApplication] = []
        kept: list[Message] = []
        invalid: dict[str, int] = {}
        for m in messages:
            try:
                apps.append(parse_application(m.value, max_bytes, record_time=m.timestamp_ms / 1000))
                kept.append(m)
            except InvalidEvent as exc:
                key = f"invalid_{exc.kind.value}"
                invalid[key] = invalid.get(key, 0) + 1
        t1 = time.perf_counter()
        self.stage_seconds["parse"] += t1 - t0
        if not apps:
            return Prepared(apps, kept, None, consumed_at, 0.0, invalid)
        cached = await features.fetch([a.sk_id_curr for a in apps], stopping=self.stop)
        t2 = time.perf_counter()
        self.stage_seconds["features"] += t2 - t1
        return Prepared(apps, kept, cached, consumed_at, t2 - t1, invalid)

    async def _finish(
        self, prepared: Prepared, reference: Reference, rows: RowBuffer
    ) -> tuple[list[Record], list[int]]:
        """Rescore (in a thread), then the replay decisions joined with the reference's, and the rows."""
        t2 = time.perf_counter()
        assert prepared.cached is not None
        decided = await asyncio.to_thread(
            decide, self.model, prepared.apps, prepared.cached, options=self.decide_options
        )
        for unscorable in decided.unscorable:  # as the live worker dead-letters them
            self._count(unscorable.kind.value)
        t3 = time.perf_counter()
        self.stage_seconds["score"] += t3 - t2
        if not decided.scored:
            return [], []
        apps, kept, score = decided.pick(prepared.apps), decided.pick(prepared.kept), decided.score
        baseline = await reference.for_batch(apps, prepared)
        t3 = time.perf_counter()
        timings = StageTimings(prepared.consumed_at, prepared.features_s, score.inference_s, score.reasons_s)
        records, columns = replay_outputs(self.model, apps, kept, score, baseline, timings)
        rows.extend(**columns)
        joined = sum(1 for r in columns["refused_old"] if r is not None)
        self._count("rescored", len(records))
        self._count("joined", joined)
        self.stage_seconds["encode"] += time.perf_counter() - t3
        return records, columns["partition"]

    # --- publishing -----------------------------------------------------------------------------------
    async def _publish(self, publisher: Any, records: list[Record], sources: list[int]) -> None:
        await publish_records(
            publisher, self.settings.kafka.replay_topic, records, sources, self._source_partitions
        )

    async def _await_publish(self, task: asyncio.Task[None]) -> None:
        t0 = time.perf_counter()
        await task
        self.stage_seconds["publish"] += time.perf_counter() - t0
