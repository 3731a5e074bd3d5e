"""The micro-batch step shared by both engines: records → decisions + dead letters, published and acked.

:meth:`MicroBatchPipeline.handle` is the whole per-batch path, the same behind the aiokafka loop
(``batch`` engine) and behind the Faust agent (``faust`` engine):

1. parse every record (:func:`schemas.codec.parse_application`); unusable ones become dead letters;
2. one feature-cache round trip for the batch (``features.fetch``: the feature source retries an
   outage with backoff);
3. decide in-process (:func:`scoring.decide.decide`: policy, reason codes on every REFUS and REFER) on
   the pipeline's one scorer thread (LightGBM releases the GIL: the loop stages the next batch
   meanwhile), a small batch on the event loop (``stream.inline_score_max``); a row
   whose field the scorer cannot use is dead-lettered (``unscorable``) and the rest is decided; the
   decisions are encoded in one pass (:func:`scoring.decision.decision_batch_bytes`);
4. publish decisions (key = application id), dead letters and the REFER decisions again on the review
   topic, and return only when the broker has acknowledged every record (broker faults retried with
   backoff) — the caller then commits; with a challenger (:mod:`stream_app.shadow`), its decisions
   of the same rows go to the shadow topic in the same publish;
5. metrics, then the per-batch observers (e.g. live drift histograms).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import Settings
from kafka_io.records import InboundRecord, Record, dead_letter_record
from schemas.codec import parse_application
from schemas.events import LoanApplication
from schemas.exceptions import InvalidEvent
from scoring.decide import DecideOptions, ReasonsMode, decide
from scoring.decision import StageTimings, decision_batch_bytes
from scoring.features import CachedFeatures, FeatureSource
from scoring.prepared import PreparedModel
from scoring.results import BatchScore
from stream_app.batch_metrics import observe_batch, observe_scoring
from stream_app.stall import ProgressWatch

if TYPE_CHECKING:
    from credit_scorer.model_watch import ModelWatcher
    from scoring.challenger import Shadow
    from stream_app.shadow import ShadowArm

log = logging.getLogger(__name__)

BatchObserver = Callable[[BatchScore], None]


class Sink(Protocol):
    """Where decisions and dead letters go (:class:`stream_app.sink.DecisionSink`)."""

    stopping: asyncio.Event

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(
        self,
        decisions: list[Record],
        dead: list[Record],
        reviews: Sequence[Record] = (),
        shadow: Sequence[Record] = (),
    ) -> None: ...


@dataclass
class BatchReport:
    """What one batch produced (tests and the benchmark read it)."""

    decisions: int = 0
    dead_letters: int = 0
    refusals: int = 0
    score: BatchScore | None = None
    dead_letter_kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class PreparedBatch:
    """A batch on its way: staged (parsed, features fetched), then prepared (decisions and dead letters
    encoded), then published."""

    records: Sequence[InboundRecord]
    consumed_at: float
    decisions: list[Record] = field(default_factory=list)
    dead: list[Record] = field(default_factory=list)
    reviews: list[Record] = field(default_factory=list)  # the REFER decisions, for the review topic
    shadow: list[Record] = field(default_factory=list)  # the challenger's decisions (stream_app.shadow)
    kinds: dict[str, int] = field(default_factory=dict)
    event_ts: list[float] = field(default_factory=list)
    score: BatchScore | None = None
    apps: list[LoanApplication] = field(default_factory=list)  # parsed, in record order
    app_records: list[InboundRecord] = field(default_factory=list)  # the record of each
    cached: CachedFeatures | None = None  # their features (None: nothing to score)
    features_s: float = 0.0
    report: BatchReport = field(default_factory=BatchReport)
    # where the worker-added time goes, per batch (seconds; credit_scorer_stage_seconds, WORKER_STAGES)
    stage_s: dict[str, float] = field(default_factory=dict)
    staged_at: float = 0.0  # perf_counter when staging ended

    def add_dead(self, record: InboundRecord, error: InvalidEvent, max_payload_bytes: int) -> None:
        self.dead.append(dead_letter_record(record, error, max_payload_bytes))
        self.kinds[error.kind.value] = self.kinds.get(error.kind.value, 0) + 1


class MicroBatchPipeline:
    """Parse → fetch features → score → publish for one micro-batch; clients created in :meth:`start`."""

    def __init__(
        self,
        settings: Settings,
        model: PreparedModel,
        features: FeatureSource,
        metrics: ScorerMetrics,
        *,
        sink: Sink,
        observers: Sequence[BatchObserver] = (),
        reasons: ReasonsMode = "refusals",
    ) -> None:
        self.settings = settings
        self.model = model
        self.features = features
        self.metrics = metrics
        self.observers = list(observers)
        self.reasons = reasons
        self.sink = sink
        self.stopping = sink.stopping  # one event: a stopping worker stops retrying everywhere
        self.ready = asyncio.Event()
        self.busy_s = 0.0  # seconds spent in handle()
        self.handled_records = 0  # records handled (decided or dead-lettered) since start
        self.progress = ProgressWatch()  # its engine reports what is pending; deliver() what was handled
        metrics.stalled.set_function(self.progress.stalled_seconds)
        self._scorer: ThreadPoolExecutor | None = None
        self._on_thread = 0  # batches handed to the scorer thread and not back yet
        self._scored_on = {t: metrics.scored_batches.labels(t) for t in ("event_loop", "scorer")}
        self.registry_version = ""  # the registry version of self.model ("" from a folder)
        self.watcher: ModelWatcher | None = None  # set by the worker when it serves a registry alias
        self.shadow: ShadowArm | None = None  # set by the worker when it may serve a challenger

    async def start(self) -> None:
        self.metrics.set_model(
            self.model.model_version,
            self.model.feature_version,
            float(self.model.threshold),
            self.registry_version,
        )
        self._scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer")
        await self.sink.start()
        await self.features.start()
        if self.watcher is not None:
            loop = asyncio.get_running_loop()
            self.watcher.start(lambda m, v: loop.call_soon_threadsafe(self.swap_model, m, v))
        if self.shadow is not None:
            self.shadow.start(asyncio.get_running_loop())
        self.ready.set()

    def swap_model(self, model: PreparedModel, registry_version: str = "") -> bool:
        """Serve ``model`` from the next batch scored (on the event loop: a batch already on the scorer
        thread keeps the model it started with). Refused (False) when its feature version is not the
        one the feature source reads: that needs the cache switched and a restart."""
        if model.feature_version != self.features.feature_version:
            log.warning(
                "model %s needs features %s, the cache serves %s: not swapped",
                model.model_version,
                model.feature_version,
                self.features.feature_version,
            )
            self.metrics.model_swaps.labels("schema_mismatch").inc()
            return False
        self.model, self.registry_version = model, registry_version
        self.metrics.set_model(
            model.model_version, model.feature_version, float(model.threshold), registry_version
        )
        return True

    async def stop(self) -> None:
        if self.watcher is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.watcher.stop)
        if self.shadow is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.shadow.stop)
        try:
            try:
                await self.sink.stop()
            finally:
                await self.features.stop()
        finally:
            if self._scorer is not None:
                self._scorer.shutdown(wait=True)
                self._scorer = None

    # --- the batch --------------------------------------------------------------------------------------
    async def handle(self, records: Sequence[InboundRecord]) -> BatchReport:
        """Process, publish and wait for the acks of one batch (raises StoppedError on stop)."""
        started = time.monotonic()
        try:
            return await self.deliver(await self.prepare(records))
        finally:
            self.busy_s += time.monotonic() - started  # the Faust engine's fetch watch reads it

    async def prepare(self, records: Sequence[InboundRecord]) -> PreparedBatch:
        """Parse, fetch features (one round trip), score and encode: everything but publishing."""
        return await self.finish(await self.stage(records))

    async def stage(self, records: Sequence[InboundRecord]) -> PreparedBatch:
        """First half of :meth:`prepare`, on the event loop: parse, then one feature-cache round trip."""
        consumed_at = time.time()
        stream = self.settings.stream
        batch = PreparedBatch(records=records, consumed_at=consumed_at)
        apps = batch.apps
        app_records = batch.app_records  # the record of each parsed application
        event_ts = batch.event_ts
        max_bytes = stream.max_payload_bytes
        t_parse = time.perf_counter()
        for rec in records:
            stamp = rec.timestamp_ms / 1000
            try:
                app = parse_application(rec.value, max_bytes, record_time=stamp)
            except InvalidEvent as exc:
                batch.add_dead(rec, exc, max_bytes)
                continue
            apps.append(app)
            app_records.append(rec)
            event_ts.append(stamp)
        t0 = time.perf_counter()
        batch.stage_s["parse"] = t0 - t_parse
        if apps:
            batch.cached = await self._fetch([a.sk_id_curr for a in apps])
            batch.features_s = time.perf_counter() - t0
        batch.staged_at = time.perf_counter()
        return batch

    async def finish(self, batch: PreparedBatch) -> PreparedBatch:
        """Second half of :meth:`prepare`: score on the scorer thread (LightGBM releases the GIL while it
        predicts, so the event loop meanwhile stages the next batch and publishes the previous one) —
        or, for a batch of at most ``stream.inline_score_max``, on the event loop itself — then encode
        the decisions and observe the scoring metrics."""
        if batch.cached is None:
            return batch
        model = self.model  # one model per batch, whatever a swap does meanwhile
        challenger = self.shadow.model if self.shadow is not None else None  # likewise
        marks: list[float] = []  # perf_counter when the scorer started and ended this batch
        # inline only while no batch is on the scorer thread: one decide at a time, batches in order
        inline = len(batch.apps) <= self.settings.stream.inline_score_max and not self._on_thread
        if self._scorer is None or inline:  # small (or not started: unit tests): on the event loop
            scored, shadow = self._timed_score(marks, model, challenger, batch)
            self._scored_on["event_loop"].inc()
        else:
            self._scored_on["scorer"].inc()
            loop = asyncio.get_running_loop()
            self._on_thread += 1
            try:
                scored, shadow = await loop.run_in_executor(
                    self._scorer, self._timed_score, marks, model, challenger, batch
                )
            finally:
                self._on_thread -= 1
        resumed = time.perf_counter()
        stage_s = batch.stage_s
        stage_s["scorer_wait"] = max(0.0, marks[0] - batch.staged_at) if batch.staged_at else 0.0
        stage_s["decide"] = marks[1] - marks[0]
        stage_s["handback"] = max(0.0, resumed - marks[1])  # scorer done → the event loop resumes it
        apps, cached, unscorable, score = scored
        max_bytes = self.settings.stream.max_payload_bytes
        for bad_rec, error in unscorable:
            batch.add_dead(bad_rec, error, max_bytes)
        if score is not None:
            timings = StageTimings(batch.consumed_at, batch.features_s, score.inference_s, score.reasons_s)
            encoded = decision_batch_bytes(apps, score.results, timings)
            batch.decisions = [(app.key.encode(), value) for app, value in zip(apps, encoded, strict=True)]
            batch.reviews = [
                rec for rec, r in zip(batch.decisions, score.results, strict=True) if r.decision == "REFER"
            ]
            batch.score = score
            batch.report.refusals = observe_scoring(
                self.metrics, model.model_version, cached, batch.features_s, score
            )
            if shadow is not None and challenger is not None and self.shadow is not None:
                batch.shadow = self.shadow.records(apps, shadow, timings)
                self.shadow.observe(challenger.model_version, shadow)
        stage_s["encode"] = time.perf_counter() - resumed
        return batch

    async def deliver(self, batch: PreparedBatch) -> BatchReport:
        """Publish a prepared batch and wait for every ack; then metrics and observers."""
        t_pub = time.perf_counter()
        await self.sink.publish(batch.decisions, batch.dead, batch.reviews, batch.shadow)
        produced_at = time.time()
        self.progress.handled(len(batch.decisions) + len(batch.dead))
        self.handled_records += len(batch.decisions) + len(batch.dead)
        observe_batch(
            self.metrics,
            batch.records,
            batch.event_ts,
            batch.consumed_at,
            produced_at,
            time.perf_counter() - t_pub,
            batch.kinds,
            len(batch.decisions),
        )
        stage = self.metrics.stage_seconds
        for name, seconds in batch.stage_s.items():
            stage.labels(name).observe(seconds)
        report = batch.report
        report.decisions, report.dead_letters, report.score = (
            len(batch.decisions),
            len(batch.dead),
            batch.score,
        )
        report.dead_letter_kinds = batch.kinds
        if batch.score is not None:
            self._notify(batch.score)
        return report

    def _timed_score(
        self,
        marks: list[float],
        model: PreparedModel,
        challenger: PreparedModel | None,
        batch: PreparedBatch,
    ) -> Any:
        marks.append(time.perf_counter())
        try:
            assert batch.cached is not None
            return self._score_both(model, challenger, batch.apps, batch.cached, batch.app_records)
        finally:
            marks.append(time.perf_counter())

    async def _fetch(self, sk_ids: list[int]) -> CachedFeatures:
        # the source retries Redis faults (its one policy) until healed or the worker stops
        return await self.features.fetch(sk_ids, stopping=self.stopping)

    def _score_both(
        self,
        model: PreparedModel,
        challenger: PreparedModel | None,
        apps: list[LoanApplication],
        cached: CachedFeatures,
        app_records: Sequence[InboundRecord],
    ) -> tuple[
        tuple[
            list[LoanApplication], CachedFeatures, list[tuple[InboundRecord, InvalidEvent]], BatchScore | None
        ],
        Shadow | None,
    ]:
        """The champion's decisions, then (with a challenger) the challenger's on the same matrix."""
        scored = self._score(model, apps, cached, app_records)
        _apps, kept, _bad, score = scored
        if challenger is None or score is None or self.shadow is None:
            return scored, None
        return scored, self.shadow.decide(challenger, score, kept, self._options())

    def _options(self) -> DecideOptions:
        stream = self.settings.stream
        return DecideOptions(
            self.reasons,
            stream.top_reasons,
            attribution=stream.attribution,
            counter_offers=stream.counter_offers,
        )

    def _score(
        self,
        model: PreparedModel,
        apps: list[LoanApplication],
        cached: CachedFeatures,
        app_records: Sequence[InboundRecord],
    ) -> tuple[
        list[LoanApplication], CachedFeatures, list[tuple[InboundRecord, InvalidEvent]], BatchScore | None
    ]:
        decided = decide(model, apps, cached, options=self._options())
        bad = [(app_records[u.index], InvalidEvent(u.kind, u.message)) for u in decided.unscorable]
        score = decided.score if decided.scored else None
        return decided.pick(apps), decided.features, bad, score

    # --- observers ------------------------------------------------------------------------------------
    def _notify(self, score: BatchScore) -> None:
        for observer in self.observers:
            try:
                observer(score)
            except Exception:  # an observer must never stop the stream
                log.exception("batch observer %r failed", observer)
