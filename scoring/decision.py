"""Build the Decision record from an application and its score — the same for worker, API and replay.

Two entry points give the same record:

* :func:`build_decision` → a :class:`schemas.events.Decision` object (API responses, replay);
* :func:`decision_bytes` → its JSON bytes directly (the worker's hot path: no model object at all,
  about 3x cheaper than ``encode_decision(build_decision(...))``).

Both start from :func:`decision_document`. Values come from trusted code (a validated application, the
scoring use case), so objects are built without re-validation, exactly as pydantic's ``model_construct``
does it but without its per-field bookkeeping; unit tests check that such records validate, equal their
validated copies and round-trip through the codec.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from schemas.events import (
    DECISION_VERSION,
    MODEL_FIELDS,
    Decision,
    DecisionLabel,
    LoanApplication,
    ReasonCode,
    RuleFired,
    StageLatency,
)
from schemas.events import CounterOffer as CounterOfferRecord
from schemas.events import Reason as ReasonRecord
from scoring.results import ScoreResult

_M = TypeVar("_M", bound=BaseModel)
_LABELS = {label.value: label for label in DecisionLabel}


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Where an event's time went (epoch seconds for instants, seconds for durations)."""

    consumed_at: float  # taken from the topic (the API: request received)
    features_s: float  # feature-cache fetch (the batch's, shared by its events)
    inference_s: float  # assembly + predict (the batch's)
    reasons_s: float  # reasons (the batch's)
    decided_at: float | None = None  # record built; default: now
    produce_s: float | None = None  # unknown while building the record; the worker measures it apart


def decision_document(
    application: LoanApplication,
    result: ScoreResult,
    timings: StageTimings,
    *,
    is_replay: bool = False,
    baseline_model_version: str | None = None,
    baseline_decision: str | None = None,
    baseline_probability: float | None = None,
) -> dict[str, Any]:
    """The decision's JSON document (datetimes as UTC datetimes). ``queue_s`` = consumed − event time
    and ``total_s`` = decided − event time, both floored at 0 (producer clocks may run ahead)."""
    if result.sk_id_curr != application.sk_id_curr:
        raise ValueError(
            f"score of client {result.sk_id_curr} cannot decide application {application.key} "
            f"of client {application.sk_id_curr}"
        )
    if result.decision not in _LABELS or (baseline_decision is not None and baseline_decision not in _LABELS):
        raise ValueError(
            f"decision must be ACCORD, REFUS or REFER, got {result.decision!r} / {baseline_decision!r}"
        )
    decided_at = time.time() if timings.decided_at is None else timings.decided_at
    event_time = application.event_time
    event_ts = event_time.timestamp()
    return {
        "schema_version": DECISION_VERSION,
        "application_id": application.key,
        "event_id": application.event_id,
        "sk_id_curr": application.sk_id_curr,
        "decision": result.decision,
        "probability_default": result.probability,
        "score": 1.0 - result.probability,  # the original API's credit score: P(approval)
        "threshold": result.threshold,
        "model_version": result.model_version,
        "feature_version": result.feature_version,
        "features_found": result.features_found,
        "features_age_s": result.features_age_s,
        "reasons": [],
        "reason_codes": _codes(result),
        "rules": _rules(result),
        "policy_version": result.policy_version,
        "review": None,
        "latency": {
            "queue_s": max(0.0, timings.consumed_at - event_ts),
            "features_s": timings.features_s,
            "inference_s": timings.inference_s,
            "reasons_s": timings.reasons_s,
            "produce_s": timings.produce_s,
            "total_s": max(0.0, decided_at - event_ts),
        },
        "event_time": event_time,
        "consumed_at": datetime.fromtimestamp(timings.consumed_at, UTC),
        "decided_at": datetime.fromtimestamp(decided_at, UTC),
        "is_replay": is_replay,
        "baseline_model_version": baseline_model_version,
        "baseline_decision": baseline_decision,
        "baseline_probability_default": baseline_probability,
        "counter_offer": _offer(result),
    }


def decision_bytes(
    application: LoanApplication, result: ScoreResult, timings: StageTimings, **replay: Any
) -> bytes:
    """The Decision record's JSON bytes (same document as ``encode_decision(build_decision(...))``)."""
    return orjson.dumps(decision_document(application, result, timings, **replay), option=orjson.OPT_UTC_Z)


def decision_batch_bytes(
    applications: Sequence[LoanApplication], results: Sequence[ScoreResult], timings: StageTimings
) -> list[bytes]:
    """The JSON bytes of a batch's decisions (not replays) — byte for byte
    ``[decision_bytes(a, r, timings) for a, r in zip(applications, results)]``, each decision stamped
    ``decided_at`` when its record is built (unless ``timings.decided_at``), at a fraction of the cost:
    the batch-wide values are converted once and each record is a copy of one template document."""
    if len(applications) != len(results):
        raise ValueError(f"{len(applications)} applications but {len(results)} scores")
    consumed_at = timings.consumed_at
    fixed_decided = timings.decided_at
    latency = {
        "queue_s": 0.0,
        "features_s": timings.features_s,
        "inference_s": timings.inference_s,
        "reasons_s": timings.reasons_s,
        "produce_s": timings.produce_s,
        "total_s": 0.0,
    }
    template: dict[str, Any] = dict.fromkeys(_DOCUMENT_KEYS)
    template["schema_version"] = DECISION_VERSION
    template["consumed_at"] = datetime.fromtimestamp(consumed_at, UTC)
    template["is_replay"] = False
    template["review"] = None
    dumps, opt, clock, stamp = orjson.dumps, orjson.OPT_UTC_Z, time.time, datetime.fromtimestamp
    out: list[bytes] = []
    append = out.append
    for application, result in zip(applications, results, strict=True):
        if result.sk_id_curr != application.sk_id_curr or result.decision not in _LABELS:
            decision_document(application, result, timings)  # raises the same error as the slow path
        decided_at = clock() if fixed_decided is None else fixed_decided
        event_time = application.event_time
        event_ts = event_time.timestamp()
        doc = template.copy()
        lat = latency.copy()
        queue_s = consumed_at - event_ts
        lat["queue_s"] = queue_s if queue_s > 0.0 else 0.0
        total_s = decided_at - event_ts
        lat["total_s"] = total_s if total_s > 0.0 else 0.0
        doc["application_id"] = application.key
        doc["event_id"] = application.event_id
        doc["sk_id_curr"] = application.sk_id_curr
        doc["decision"] = result.decision
        doc["probability_default"] = result.probability
        doc["score"] = 1.0 - result.probability
        doc["threshold"] = result.threshold
        doc["model_version"] = result.model_version
        doc["feature_version"] = result.feature_version
        doc["features_found"] = result.features_found
        doc["features_age_s"] = result.features_age_s
        doc["reasons"] = []
        doc["reason_codes"] = _codes(result) if result.reasons else []
        doc["rules"] = _rules(result) if result.rules else []
        doc["policy_version"] = result.policy_version
        doc["latency"] = lat
        doc["event_time"] = event_time
        doc["decided_at"] = stamp(decided_at, UTC)
        doc["counter_offer"] = _offer(result)
        append(dumps(doc, option=opt))
    return out


def build_decision(
    application: LoanApplication, result: ScoreResult, timings: StageTimings, **replay: Any
) -> Decision:
    """The Decision of one scored application (replay keywords: see :func:`decision_document`)."""
    doc = decision_document(application, result, timings, **replay)
    doc["decision"] = _LABELS[doc["decision"]]
    if doc["baseline_decision"] is not None:
        doc["baseline_decision"] = _LABELS[doc["baseline_decision"]]
    doc["latency"] = _trusted(StageLatency, doc["latency"])
    doc["reason_codes"] = [
        _trusted(ReasonCode, {**c, "features": [_trusted(ReasonRecord, r) for r in c["features"]]})
        for c in doc["reason_codes"]
    ]
    doc["rules"] = [_trusted(RuleFired, {**r, "outcome": _LABELS[r["outcome"]]}) for r in doc["rules"]]
    if doc["counter_offer"] is not None:
        doc["counter_offer"] = _trusted(CounterOfferRecord, doc["counter_offer"])
    return _trusted(Decision, doc)


_DOCUMENT_KEYS: tuple[str, ...] = tuple(Decision.model_fields)


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """A model instance from complete, already valid values — what ``model_construct`` does, minus its
    per-field default handling (every field is given here; the unit tests compare with validation)."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def review_decision(
    application_id: str,
    decision: str,
    review: dict[str, Any],
    *,
    event_id: str,
    decided_at: float | None = None,
) -> Decision:
    """A reviewer's final decision on a referred application: same application id (the key that links
    it to the original), ``decision`` ACCORD or REFUS, the ``review`` (reviewer, reason, optional
    original_decision / original_event_id), the model's fields null. Validated (pydantic
    ValidationError on a bad value: the adapters answer 422 / exit 2)."""
    at = datetime.fromtimestamp(time.time() if decided_at is None else decided_at, UTC)
    return Decision.model_validate(
        {
            "application_id": application_id,
            "event_id": event_id,
            "decision": decision,
            "review": {**review, "reviewed_at": at},
            "event_time": at,
            "consumed_at": at,
            "decided_at": at,
            **dict.fromkeys(_MODEL_ONLY),
        }
    )


_MODEL_ONLY = (*MODEL_FIELDS, "features_age_s")


def _codes(result: ScoreResult) -> list[dict[str, Any]]:
    return [
        {
            "code": c.code,
            "text": c.text,
            "contribution": c.contribution,
            "features": [
                {"feature": r.feature, "value": _json_value(r.value), "contribution": r.contribution}
                for r in c.features
            ],
        }
        for c in result.reasons
    ]


def _rules(result: ScoreResult) -> list[dict[str, Any]]:
    return [{"code": r.code, "text": r.text, "outcome": r.outcome} for r in result.rules]


def _offer(result: ScoreResult) -> dict[str, float] | None:
    offer = result.counter_offer
    if offer is None:
        return None
    return {
        "amt_credit": offer.amt_credit,
        "amt_annuity": offer.amt_annuity,
        "probability_default": offer.probability_default,
    }


def _json_value(value: object) -> float | str | None:
    if value is None or isinstance(value, str):
        return value
    return float(value)  # type: ignore[arg-type]
