"""FastAPI app factory: ``create_app(settings)``; clients and the model are made in the lifespan.

The lifespan loads, verifies and prepares the model (:func:`scoring.model.load_model`,
:class:`scoring.prepared.PreparedModel`; when it cannot, the API still starts so /health can say why,
and /predict answers 503), starts the feature source (its Redis client), and creates a publisher whose
Kafka producer starts on the first POST /applications. Metrics go to a registry per app instance
(:class:`credit_scorer.metrics.ScorerMetrics`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.decision_log import DecisionLog
from api.exceptions import ApiError
from api.publisher import ApplicationPublisher
from api.routes import OrjsonResponse, router
from api.scorer import ApiScorer
from api.store_routes import router as store_router
from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import Settings

log = logging.getLogger(__name__)

_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class RequestMetricsMiddleware:
    """credit_scorer_api_request_seconds{route, status}: route = the matched path template (bounded:
    unmatched paths are ``other``), status = class (2xx, 4xx, …)."""

    def __init__(self, app: ASGIApp, metrics: ScorerMetrics) -> None:
        self.app = app
        self.histogram = metrics.api_request_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"
            self.histogram.labels(path, _STATUS_CLASSES.get(status[0] // 100, "5xx")).observe(
                time.perf_counter() - started
            )


def _json_safe(value: Any) -> Any:
    """``value`` with every integer orjson cannot write (beyond 64 bits) as its decimal string, so a 422
    can echo any input back (pydantic puts it in ``input`` and ``ctx``); NaN/Infinity become null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def _load_model(settings: Settings) -> tuple[Any, str | None, str]:
    """(prepared model or None, why not, its registry version or ""); a bad policy file raises
    PolicyError (no start)."""
    from credit_scorer.model_source import load_served_model
    from scoring.exceptions import PolicyError, ScoringError
    from scoring.policy_file import prepare_with_policy
    from training.exceptions import RegistryError

    try:
        served = load_served_model(settings)
        prepared = prepare_with_policy(served.loaded, settings.policy.path, settings.policy.reason_codes)
        return prepared, None, served.registry_version or ""
    except PolicyError:
        raise
    except (ScoringError, RegistryError) as exc:
        log.error("API started without a model: %s", exc)
        return None, str(exc), ""


def _watch_model(settings: Settings, scorer: ApiScorer, version: str, metrics: ScorerMetrics) -> Any:
    """The registry alias watcher of the API (None when not wanted): swaps ``scorer.model`` on the loop."""
    from credit_scorer.model_watch import ModelWatcher

    if scorer.model is None or not ModelWatcher.wanted(settings):
        return None
    watcher = ModelWatcher(settings, version or None, scorer.model.feature_version, metrics)
    loop = asyncio.get_running_loop()

    def swap(model: Any, new_version: str) -> None:
        scorer.model = model  # requests read it once each: one model per answer
        metrics.set_model(model.model_version, model.feature_version, model.threshold, new_version)

    watcher.start(lambda m, v: loop.call_soon_threadsafe(swap, m, v))
    return watcher


def _open_store(settings: Settings) -> tuple[Any, str | None]:
    """The decision store's engine (no connection yet); a bad URL leaves the store routes at 503."""
    from sqlalchemy.exc import ArgumentError

    from decision_store.store import DecisionStore

    try:
        return DecisionStore.from_url(settings.store.resolved_url(settings.paths.data_dir)), None
    except (ArgumentError, ImportError, ValueError) as exc:
        log.error("API started without the decision store: %s", exc)
        return None, str(exc)


def create_app(settings: Settings, *, metrics: ScorerMetrics | None = None) -> FastAPI:
    """The REST API on ``settings`` (model, Redis and Kafka from it; nothing is connected before start)."""
    app_metrics = metrics or ScorerMetrics(CollectorRegistry(auto_describe=True))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from credit_scorer.retry import Backoff
        from feature_cache.source import RedisFeatureSource

        model, model_error, registry_version = _load_model(settings)
        # without a model the source serves /health only (/predict answers 503 before reading)
        features = RedisFeatureSource(
            settings.redis,
            model.feature_version if model is not None else "",
            Backoff.from_settings(settings.stream, max_attempts=settings.api.feature_attempts),
            metrics=app_metrics,
            expect_live=model is not None,
        )
        await features.start()  # warns when the cache is not ready: /health reports it, /predict 503s
        if model is not None:
            app_metrics.set_model(
                model.model_version, model.feature_version, model.threshold, registry_version
            )
        decision_log = DecisionLog(settings.kafka, settings.api.publish_timeout_s)
        app.state.store, app.state.store_error = _open_store(settings)
        app.state.scorer = ApiScorer(
            model,
            features,
            app_metrics,
            model_error=model_error,
            top_reasons=settings.api.top_reasons,
            reasons=settings.api.reasons,
            counter_offers=settings.api.counter_offers,
            recorder=decision_log if settings.api.publish_decisions else None,
        )
        app.state.publisher = ApplicationPublisher(settings.kafka, settings.api.publish_timeout_s)
        watcher = _watch_model(settings, app.state.scorer, registry_version, app_metrics)
        try:
            yield
        finally:
            await decision_log.stop()
            if app.state.store is not None:
                app.state.store.close()
            if watcher is not None:
                await asyncio.to_thread(watcher.stop)  # joins a preparation in progress, off the loop
            await app.state.publisher.stop()
            await features.stop()

    app = FastAPI(
        title="credit-scorer API",
        version="1",
        summary="Prêt à dépenser credit scoring: the original REST API over the stream scorer's model.",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.include_router(router)
    app.include_router(store_router)

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return OrjsonResponse({"detail": exc.detail}, status_code=exc.status_code)

    async def invalid_request(_request: Request, exc: Exception) -> Response:
        # FastAPI's default handler fails (500) on a NaN/Infinity input: orjson writes them as null.
        assert isinstance(exc, RequestValidationError)
        return OrjsonResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_middleware(RequestMetricsMiddleware, metrics=app_metrics)
    app.state.metrics = app_metrics
    return app
