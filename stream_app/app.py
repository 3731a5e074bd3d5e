"""The Faust app of the stream worker, for either engine, from the one settings object.

* ``engine="batch"`` (the default): the app (lifecycle, signals, web, sensors) runs
  :class:`stream_app.runtime.BatchRuntime` — source, pipeline, sink, checkpoint — on a plain aiokafka
  consumer and producer; Faust's own Kafka consumer/producer are not booted (they would join a second
  group for nothing). See the runtime docstring for why the hot path goes around Faust's consumer.
* ``engine="faust"``: a real Faust agent on the applications topic, micro-batched with
  ``stream.take_events(batch_max, within=…)``, calling the same :class:`MicroBatchPipeline` (the same
  decision use case, sink and fetch watch); Faust acks (and later commits) the events only after
  ``pipeline.handle`` returned, i.e. after every decision was acknowledged. Its consumer is
  :class:`stream_app.faust_consumer.SeekSafeConsumer` (Faust's own loses records after a seek;
  ``settings.stream.faust_stock_consumer`` brings it back to reproduce that). It fetches with the
  worker's long-poll (``stream.fetch_max_wait_ms``) and
  :class:`stream_app.faust_consumer.FaustFetchWatch` raises it when fetches starve, as the batch
  engine's fetch watch does.

Why ``batch`` is the default: both engines lose nothing under the same chaos test, but the batch
engine decides 3.7x more applications per second (2.8x per CPU-second) than the Faust agent on the
same broker, Redis and model (``bench/results/stream.json``: ``ratios.batch_vs_faust``), because it
overlaps the next batch's parsing and Redis round trip with the current batch's scoring and
publishing and commits off the batch path, where the agent processes one ``take_events`` batch at a
time behind Faust's own per-event bookkeeping.

Both engines serve ``GET /health`` on the Faust web server (``stream.web_port``, 0 = off): the
worker's readiness, model, and whether it is stalled (records pending, none decided), for a load
balancer or an orchestrator's probe; 200 when healthy, 503 when degraded.

Clients are created when the app starts (``MicroBatchPipeline.start``), never at import.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.app.base import BootStrategy
from mode import Service

from credit_scorer.exceptions import StoppedError
from credit_scorer.settings import Settings
from kafka_io.records import InboundRecord
from stream_app.engine import MicroBatchPipeline
from stream_app.faust_consumer import FaustFetchWatch, SeekSafeApp
from stream_app.fetch_watch import STALL_WARN_S
from stream_app.runtime import BatchRuntime
from stream_app.startup import JoinedConsumer

log = logging.getLogger(__name__)
FAUST_WITHIN_MIN_S = 0.001


def faust_settings(settings: Settings, engine: str) -> dict[str, Any]:
    """faust.Settings keyword arguments derived from :class:`Settings`."""
    kafka, stream = settings.kafka, settings.stream
    hosts = ";".join(h.strip() for h in kafka.bootstrap_servers.split(",") if h.strip())
    conf: dict[str, Any] = {
        "broker": f"kafka://{hosts}",
        "broker_session_timeout": kafka.session_timeout_s,
        "broker_rebalance_timeout": kafka.rebalance_timeout_s,
        "broker_heartbeat_interval": max(0.1, kafka.session_timeout_s / 3),
        "broker_request_timeout": kafka.request_timeout_s,
        "broker_commit_interval": 0.5,
        "broker_commit_every": stream.batch_max,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "topic_partitions": kafka.partitions,
        "topic_replication_factor": kafka.replication_factor,
        "topic_allow_declare": True,
        "stream_buffer_maxsize": max(4096, 2 * stream.batch_max),
        "web_enabled": stream.web_port != 0,
        "web_port": stream.web_port or 6066,
        "web_bind": "127.0.0.1",
        "datadir": str(settings.paths.data_dir / "faust"),
        "processing_guarantee": "at_least_once",
    }
    if kafka.security_protocol != "PLAINTEXT":
        conf["broker_credentials"] = _credentials(settings)
    return conf


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    ssl_context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        ssl_context = create_ssl_context()
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            ssl_context=ssl_context,
            mechanism=kafka.sasl_mechanism,
        )
    return faust.SSLCredentials(ssl_context)


class _NoKafkaBoot(BootStrategy):
    """Web only (``/health``): the batch engine owns its Kafka clients, and Faust's sensors (its
    Monitor) would only watch Faust streams and tables, of which the batch engine has none."""

    enable_kafka = False
    enable_sensors = False


class BatchEngineApp(faust.App):
    BootStrategy = _NoKafkaBoot


class PipelineService(Service):
    """Starts/stops the pipeline (producer, Redis client) with the Faust app (``faust`` engine)."""

    def __init__(self, pipeline: MicroBatchPipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    async def on_start(self) -> None:
        await self.pipeline.start()

    async def on_stop(self) -> None:
        self.pipeline.stopping.set()
        await self.pipeline.stop()


def create_app(
    settings: Settings,
    pipeline: MicroBatchPipeline,
    engine: str | None = None,
    joined: JoinedConsumer | None = None,
) -> faust.App:
    """The worker's Faust app running ``pipeline`` with the chosen engine (default settings.stream.engine);
    ``joined``: the batch engine's consumer, started while the model loaded (stream_app.startup)."""
    engine = engine or settings.stream.engine
    # Faust keeps its table/offset state under datadir and fails at start if the folder is missing
    # (a fresh checkout has no var/).
    (settings.paths.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    if engine == "batch":
        app = BatchEngineApp(f"{settings.kafka.consumer_group}-app", **faust_settings(settings, engine))
        app.service(BatchRuntime(settings, pipeline, joined))  # type: ignore[arg-type]  # instances work too
        _add_health_page(app, pipeline, engine)
        return app
    if engine != "faust":
        raise ValueError(f"unknown stream engine {engine!r} (expected 'batch' or 'faust')")
    app_class: type[faust.App] = faust.App if settings.stream.faust_stock_consumer else SeekSafeApp
    faust_app = app_class(settings.kafka.consumer_group, **faust_settings(settings, engine))
    faust_app.service(PipelineService(pipeline))  # type: ignore[arg-type]
    if isinstance(faust_app, SeekSafeApp):  # its consumer takes the worker's long-poll and is watched
        faust_app.fetch_max_wait_ms = settings.stream.fetch_max_wait_ms
        watch = FaustFetchWatch(faust_app, pipeline, settings.stream, pipeline.metrics)
        faust_app.service(watch)  # type: ignore[arg-type]
    _add_faust_agent(faust_app, settings, pipeline)
    _add_health_page(faust_app, pipeline, engine)
    return faust_app


def _add_health_page(app: faust.App, pipeline: MicroBatchPipeline, engine: str) -> None:
    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        progress, model = pipeline.progress, pipeline.model
        stalled = progress.stalled_seconds()
        reasons = []
        if not pipeline.ready.is_set():
            reasons.append("starting: model, feature cache or producer not ready")
        if stalled >= STALL_WARN_S:
            reasons.append(
                f"stalled: {progress.pending_records} records pending, none decided for {stalled:.0f}s"
            )
        body = {
            "status": "degraded" if reasons else "healthy",
            "reasons": reasons,
            "engine": engine,
            "model_version": model.model_version,
            "feature_version": model.feature_version,
            "pending_records": progress.pending_records,
            "stalled_seconds": round(stalled, 3),
        }
        return web.json(body, status=503 if reasons else 200)


def _add_faust_agent(app: faust.App, settings: Settings, pipeline: MicroBatchPipeline) -> None:
    stream = settings.stream
    topic = app.topic(
        settings.kafka.applications_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka.partitions,
    )
    within = max(FAUST_WITHIN_MIN_S, stream.batch_within_s)

    @app.agent(topic, name="score_applications")
    async def score_applications(events: faust.StreamT) -> None:
        await pipeline.ready.wait()
        async for batch in events.take_events(stream.batch_max, within=within):  # type: ignore[attr-defined]
            records = [
                InboundRecord(
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.message.key,
                    e.message.value,
                    int(e.message.timestamp * 1000),
                )
                for e in batch
            ]
            try:
                await pipeline.handle(records)
            except StoppedError:
                log.info("stopping with an unacknowledged batch; it will be reprocessed")
                return
