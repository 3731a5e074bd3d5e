"""One stream-worker process: load the model, build the pipeline and the Faust app, run until signalled.

SIGTERM/SIGINT (handled by the Faust/mode worker) stop the app gracefully: the batch engine finishes
its in-flight batch (decisions acknowledged, offsets committed), leaves the group and closes its
clients. A SIGKILL loses nothing either: uncommitted records are redelivered (at-least-once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from credit_scorer.memory import keep_freed_memory, settle_heap
from credit_scorer.metrics import ScorerMetrics, default_metrics
from credit_scorer.retry import Backoff
from credit_scorer.settings import Settings
from feature_cache.source import RedisFeatureSource
from kafka_io.config import producer_kwargs
from scoring.decide import ReasonsMode
from scoring.prepared import PreparedModel
from stream_app.engine import BatchObserver, MicroBatchPipeline
from stream_app.exceptions import MetricsPortError, ModelNotFoundError, PolicyConfigError
from stream_app.shadow import ShadowArm
from stream_app.sink import DecisionSink
from stream_app.startup import JoinedConsumer

log = logging.getLogger(__name__)


def load_worker_model(settings: Settings) -> PreparedModel:
    """The model settings.model selects (a folder, or the registry's alias or version), loaded,
    verified and prepared once with the settings' policy and reason codes (ModelNotFoundError,
    PolicyConfigError)."""
    model, _version = load_worker_served(settings)
    return model


def load_worker_served(settings: Settings) -> tuple[PreparedModel, str]:
    """(prepared model, its registry version or "" from a folder) of settings.model (ModelNotFoundError,
    PolicyConfigError)."""
    from credit_scorer.model_source import load_served_model
    from scoring.exceptions import PolicyError, ScoringError
    from scoring.policy_file import prepare_with_policy
    from training.exceptions import RegistryError

    try:
        served = load_served_model(settings)
    except (ScoringError, RegistryError) as exc:
        raise ModelNotFoundError(str(exc)) from exc
    log.info("model %s", served.describe())
    try:
        prepared = prepare_with_policy(served.loaded, settings.policy.path, settings.policy.reason_codes)
    except PolicyError as exc:
        raise PolicyConfigError(str(exc)) from exc
    return prepared, served.registry_version or ""


def build_pipeline(
    settings: Settings,
    model: PreparedModel,
    metrics: ScorerMetrics | None = None,
    observers: Sequence[BatchObserver] = (),
    reasons: ReasonsMode | None = None,
    registry_version: str = "",
) -> MicroBatchPipeline:
    """The micro-batch pipeline on Redis features and the decision sink (clients made in start()); with
    a registry alias to serve (settings.model), it watches the alias and swaps models without a restart."""
    from aiokafka import AIOKafkaProducer

    from credit_scorer.model_watch import ModelWatcher

    metrics = metrics or default_metrics()
    sink = DecisionSink(settings, metrics, lambda: AIOKafkaProducer(**producer_kwargs(settings.kafka)))
    backoff = Backoff.from_settings(settings.stream)
    features = RedisFeatureSource(settings.redis, model.feature_version, backoff, metrics=metrics)
    pipeline = MicroBatchPipeline(
        settings,
        model,
        features,
        metrics,
        sink=sink,
        observers=observers,
        reasons=reasons or settings.stream.reasons,
    )
    pipeline.registry_version = registry_version
    if ModelWatcher.wanted(settings):
        pipeline.watcher = ModelWatcher(settings, registry_version or None, model.feature_version, metrics)
    pipeline.shadow = shadow_arm(settings, model.feature_version, metrics)
    return pipeline


def shadow_arm(settings: Settings, feature_version: str, metrics: ScorerMetrics) -> ShadowArm | None:
    """The challenger arm when settings may serve one (model.challenger_path, or the registry's
    model.challenger_alias, watched): None when neither can ever give a challenger."""
    from credit_scorer.challenger_watch import ChallengerWatcher, load_challenger

    m = settings.model
    if not (m.challenger_path if m.source == "folder" else m.challenger_alias):
        return None
    challenger, version = load_challenger(settings, feature_version, metrics)
    watcher = None
    if ChallengerWatcher.wanted(settings):
        watcher = ChallengerWatcher(settings, version or None, feature_version, metrics)
    if challenger is None and watcher is None:
        return None
    return ShadowArm(metrics, feature_version, challenger, version, watcher)


def start_metrics_server(metrics: ScorerMetrics, port: int) -> Any:
    """prometheus_client's /metrics HTTP server on ``port`` (0 = disabled); returns it (or None)."""
    if not port:
        return None
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, registry=metrics.registry)
    except OSError as exc:
        raise MetricsPortError(f"cannot serve /metrics on port {port}: {exc.strerror or exc}") from exc
    return server


def _drift_observers(settings: Settings, model: PreparedModel, metrics: ScorerMetrics) -> list[BatchObserver]:
    """Live drift histograms (stream_app.drift_observer) when enabled in settings.drift."""
    from stream_app.drift_observer import drift_observers

    return list(drift_observers(settings.drift, model, metrics))


def _fairness_observers(
    settings: Settings, model: PreparedModel, metrics: ScorerMetrics
) -> list[BatchObserver]:
    """Approval rates by segment and disparate impact (stream_app.fairness_observer) when enabled."""
    from stream_app.fairness_observer import fairness_observers

    return list(fairness_observers(settings.fairness, model, metrics))


def run_worker(
    settings: Settings,
    engine: str | None = None,
    observers: Sequence[BatchObserver] = (),
    model: PreparedModel | None = None,
    registry_version: str = "",
    joined: JoinedConsumer | None = None,
) -> None:
    """Run one worker until SIGTERM/SIGINT (blocks; raises SystemExit like any Faust worker);
    ``joined``: the batch engine's consumer, already in the group (stream_app.startup.start_worker)."""
    import faust

    from stream_app.app import create_app

    engine = engine or settings.stream.engine
    keep_freed_memory()
    if model is None:
        model, registry_version = load_worker_served(settings)
    metrics = default_metrics()
    pipeline = build_pipeline(
        settings,
        model,
        metrics,
        [
            *observers,
            *_drift_observers(settings, model, metrics),
            *_fairness_observers(settings, model, metrics),
        ],
        registry_version=registry_version,
    )
    app = create_app(settings, pipeline, engine, joined)
    server = start_metrics_server(metrics, settings.stream.metrics_port)
    log.info(
        "worker: engine=%s model=%s topic=%s group=%s",
        engine,
        model.model_version,
        settings.kafka.applications_topic,
        settings.kafka.consumer_group,
    )
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), redirect_stdouts=False, quiet=True)
    # No terminal spinner: with one, Faust sets the root logger to DEBUG (for its SpinnerHandler), so
    # every debug call of aiokafka builds a LogRecord, a measurable share of the event loop's time.
    worker.spinner = None
    # the model, schema and clients' objects: out of every later full collection (a pause of everything)
    thresholds = settle_heap()
    log.info("start-up objects frozen out of the garbage collector's reach; thresholds %s", thresholds)
    try:
        worker.execute_from_commandline()
    finally:
        if server is not None:
            server.shutdown()
