"""The REST routes: POST /predict, GET /health, GET /metrics, POST /applications, POST /reviews.

Handlers return :class:`OrjsonResponse` objects directly (FastAPI then skips re-validating the
answer); the declared ``response_model``/``responses`` only document the contract in OpenAPI.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.exceptions import UnscorableInputError
from api.models import (
    ApplicationAccepted,
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    ReviewAccepted,
    ReviewRequest,
)
from api.publisher import ApplicationPublisher
from api.scorer import ApiScorer
from schemas.events import LoanApplication
from scoring.decision import review_decision

_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


class OrjsonResponse(JSONResponse):
    """JSON answers by orjson (NaN/Infinity are written as null, numpy values accepted)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_ORJSON_OPTS)


router = APIRouter()

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "A dependency is down (detail says which)."}
}
_UNREADABLE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not readable JSON (e.g. not UTF-8)."}
}


def _scorer(request: Request) -> ApiScorer:
    return request.app.state.scorer  # type: ignore[no-any-return]


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        404: {"model": ErrorResponse, "description": "Client not found"},
        **_UNREADABLE,
        **_UNAVAILABLE,
    },
    summary="Score one client (probability of default, decision, reasons).",
)
async def predict(body: PredictRequest, request: Request) -> Response:
    try:
        answer = await _scorer(request).predict(body.sk_id_curr, body.scoring_fields())  # type: ignore[attr-defined]
    except UnscorableInputError as exc:  # same shape as FastAPI's own 422s
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": exc.detail, "input": None}]
        ) from exc
    return OrjsonResponse(answer)


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Degraded (reasons say why)."}},
    summary="Model loaded, Redis reachable, feature versions matching.",
)
async def health(request: Request) -> Response:
    healthy, body = await _scorer(request).health()
    return OrjsonResponse(body, status_code=200 if healthy else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics of this API process.",
)
async def metrics(request: Request) -> Response:
    registry = _scorer(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/reviews",
    status_code=202,
    response_model=ReviewAccepted,
    responses={**_UNREADABLE, **_UNAVAILABLE},
    summary="A reviewer's verdict on a REFER: published to the decisions topic as the final decision.",
)
async def reviews(body: ReviewRequest, request: Request) -> Response:
    publisher: ApplicationPublisher = request.app.state.publisher
    review = {"reviewer": body.reviewer, "reason": body.reason, "original_decision": body.original_decision}
    if body.original_event_id is not None:
        review["original_event_id"] = body.original_event_id
    decision = review_decision(
        body.application_id, body.decision, review, event_id=f"review-{uuid.uuid4().hex}"
    )
    sent = await publisher.publish_decision(decision)
    _scorer(request).metrics.overrides.labels(body.original_decision, body.decision).inc()
    accepted = {
        "application_id": decision.application_id,
        "event_id": decision.event_id,
        "decision": body.decision,
        "topic": sent.topic,
        "partition": sent.partition,
        "offset": sent.offset,
    }
    return OrjsonResponse(accepted, status_code=202)


@router.post(
    "/applications",
    status_code=202,
    response_model=ApplicationAccepted,
    responses={**_UNREADABLE, **_UNAVAILABLE},
    summary="Publish a loan application to the applications topic (scored by the stream workers).",
)
async def applications(body: LoanApplication, request: Request) -> Response:
    publisher: ApplicationPublisher = request.app.state.publisher
    sent = await publisher.publish(body)
    accepted = {
        "application_id": body.key,
        "event_id": body.event_id,
        "topic": sent.topic,
        "partition": sent.partition,
        "offset": sent.offset,
    }
    return OrjsonResponse(accepted, status_code=202)
