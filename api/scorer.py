"""The API's scoring and health logic: one Redis round trip, then the decision use case as a batch of one.

:class:`ApiScorer` holds the prepared model (or why it could not be loaded), the feature source (the
worker's and replay's :class:`~feature_cache.source.RedisFeatureSource`, with a budget of
attempts so a request never hangs on Redis) and the app's metrics. It returns plain dicts in the shape
of :mod:`api.models` (the routes send them with orjson) and raises :mod:`api.exceptions` errors, which
the app turns into HTTP responses.

An unknown client (not in the cache):

* with no application field in the request → :class:`ClientNotFoundError` (404 ``Client not found``);
* with application fields → scored on those fields alone, exactly as the stream worker scores an
  application of an unknown client (``features_found: false`` in the answer).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Protocol

from api.exceptions import (
    ClientNotFoundError,
    FeatureCacheUnavailableError,
    ModelNotLoadedError,
    UnscorableInputError,
)
from credit_scorer.metrics import ScorerMetrics
from feature_cache.exceptions import (
    CacheUnavailableError,
    FeatureCacheError,
    FeatureVersionMismatchError,
    NoCurrentVersionError,
)
from feature_cache.source import RedisFeatureSource
from scoring.decide import DecideOptions, ReasonsMode, ScoringInput, decide
from scoring.decision import StageTimings
from scoring.exceptions import SchemaMismatchError
from scoring.prepared import PreparedModel
from scoring.results import ScoreResult

CLIENT_NOT_FOUND = "Client not found"


class DecisionRecorder(Protocol):
    """Where /predict's decisions go (:class:`api.decision_log.DecisionLog`); returns the application id."""

    def record(
        self, sk_id_curr: int, fields: dict[str, object], result: ScoreResult, timings: StageTimings
    ) -> str: ...


class ApiScorer:
    """Per-app scoring state (created in the lifespan, never at import)."""

    def __init__(
        self,
        model: PreparedModel | None,
        features: RedisFeatureSource,
        metrics: ScorerMetrics,
        *,
        model_error: str | None = None,
        top_reasons: int = 3,
        reasons: ReasonsMode = "all",
        counter_offers: bool = True,
        recorder: DecisionRecorder | None = None,
    ) -> None:
        self.model = model
        self.recorder = recorder
        self.model_error = model_error
        self.features = features
        self.metrics = metrics
        self.options = DecideOptions(reasons, top_reasons, counter_offers=counter_offers)

    def require_model(self) -> PreparedModel:
        if self.model is None:
            raise ModelNotLoadedError(f"model not loaded: {self.model_error or 'unknown reason'}")
        return self.model

    async def predict(self, sk_id_curr: int, fields: dict[str, object]) -> dict[str, Any]:
        """The /predict answer for one client (see the module docstring for unknown clients)."""
        model = self.require_model()
        received = time.time()
        try:
            cached = await self.features.fetch([sk_id_curr])
        except CacheUnavailableError as exc:
            raise FeatureCacheUnavailableError(f"feature cache unavailable: {exc}") from exc
        except FeatureCacheError as exc:  # version not loaded / partial / corrupt vector
            raise FeatureCacheUnavailableError(f"feature cache not ready: {exc}") from exc
        fetched = time.time()
        found = bool(cached.found[0])
        self.metrics.feature_lookups.inc()
        if not found:
            self.metrics.feature_misses.inc()
            if not fields:
                raise ClientNotFoundError(CLIENT_NOT_FOUND)
        try:
            decided = decide(model, [ScoringInput(sk_id_curr, fields)], cached, options=self.options)
        except SchemaMismatchError as exc:  # cannot happen: the source reads the model's version
            raise FeatureCacheUnavailableError(f"feature cache not ready: {exc}") from exc
        if decided.unscorable:
            raise UnscorableInputError(decided.unscorable[0].message)
        answer = response_of(decided.results[0])
        if self.recorder is not None:
            timings = StageTimings(
                received, fetched - received, decided.score.inference_s, decided.score.reasons_s
            )
            answer["application_id"] = self.recorder.record(sk_id_curr, fields, decided.results[0], timings)
        return answer

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body): model loaded, Redis reachable, the cache's live version = the model's."""
        reasons: list[str] = []
        model = self.model
        if model is None:
            reasons.append(f"model not loaded: {self.model_error or 'unknown reason'}")
        reachable = True
        live: str | None = None
        match = False
        store = self.features.store
        try:
            await store.ping()
        except FeatureCacheError as exc:
            reachable = False
            reasons.append(f"Redis unreachable: {exc}")
        if reachable:
            try:
                live = await store.current_version()
                if model is not None:
                    await store.check_compatible(model.feature_version)
                    match = True
            except NoCurrentVersionError as exc:
                reasons.append(f"no live feature version: {exc}")
            except FeatureVersionMismatchError as exc:
                reasons.append(f"feature version mismatch: {exc}")
            except CacheUnavailableError as exc:
                reachable = False
                reasons.append(f"Redis unreachable: {exc}")
            except FeatureCacheError as exc:
                reasons.append(f"feature cache unusable: {exc}")
        body = {
            "status": "degraded" if reasons else "healthy",  # the original API's word
            "reasons": reasons,
            "model_loaded": model is not None,
            "model_version": model.model_version if model is not None else None,
            "model_feature_version": model.feature_version if model is not None else None,
            "redis_reachable": reachable,
            "cache_feature_version": live,
            "feature_versions_match": match,
        }
        return not reasons, body


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def response_of(result: ScoreResult) -> dict[str, Any]:
    """The original API's answer (score = probability of approval, decision, both probabilities) plus
    provenance, the policy rules that fired, the reason codes (codes and texts; the features behind
    each code inside it) and the counter-offer."""
    p = float(result.probability)
    return {
        "sk_id_curr": result.sk_id_curr,
        "score": 1.0 - p,
        "decision": result.decision,
        "probability_refusal": p,
        "probability_approval": 1.0 - p,
        "threshold": float(result.threshold),
        "model_version": result.model_version,
        "feature_version": result.feature_version,
        "policy_version": result.policy_version,
        "features_found": result.features_found,
        "features_age_s": result.features_age_s,
        "rules": [{"code": r.code, "text": r.text, "outcome": r.outcome} for r in result.rules],
        "reason_codes": [
            {
                "code": c.code,
                "text": c.text,
                "contribution": float(c.contribution),
                "features": [
                    {"feature": r.feature, "value": _finite(r.value), "contribution": float(r.contribution)}
                    for r in c.features
                ],
            }
            for c in result.reasons
        ],
        "counter_offer": None if result.counter_offer is None else dataclasses.asdict(result.counter_offer),
    }
