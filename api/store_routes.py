"""The store's read routes: GET /decisions/{application_id}, GET /clients/{sk_id_curr}/decisions (paged)
and GET /clients/{sk_id_curr}/features (the client's main features beside the training population).

The store is read through :class:`decision_store.store.DecisionStore` (engine made in the lifespan, no
connection before the first request); its blocking calls run in a worker thread. Any database fault —
down, unreachable, no ``decisions`` table yet — answers 503 naming it, like /predict's dependencies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError

from api.exceptions import FeatureCacheUnavailableError, NotFoundError, StoreUnavailableError
from api.models import ErrorResponse
from api.routes import OrjsonResponse
from decision_store.exceptions import DecisionStoreError
from decision_store.store import DecisionStore, describe
from feature_cache.exceptions import FeatureCacheError

router = APIRouter()
T = TypeVar("T")

ClientId = Annotated[int, Path(gt=0, le=2**63 - 1, description="The client (SK_ID_CURR).")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Nothing stored for this id."},
    503: {"model": ErrorResponse, "description": "The decision store is down (detail says why)."},
}


async def _read(request: Request, op: Callable[[DecisionStore], T]) -> T:
    store: DecisionStore | None = request.app.state.store
    if store is None:
        raise StoreUnavailableError(f"decision store not configured: {request.app.state.store_error}")
    try:
        return await asyncio.to_thread(op, store)
    except (DBAPIError, DecisionStoreError) as exc:
        raise StoreUnavailableError(f"decision store unavailable: {describe(exc)}") from exc


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "application_id"}


@router.get(
    "/decisions/{application_id}",
    responses=_ERRORS,
    summary="A stored decision and, when a reviewer decided it, the review beside it.",
)
async def decision(
    request: Request, application_id: Annotated[str, Path(min_length=1, max_length=128)]
) -> Response:
    rows = await _read(request, lambda s: s.by_application(application_id))
    if not rows:
        raise NotFoundError(f"Decision not found: {application_id}")
    by_kind = {r["kind"]: _record(r) for r in rows}
    return OrjsonResponse(
        {
            "application_id": application_id,
            "sk_id_curr": rows[0]["sk_id_curr"],
            "decision": by_kind.get("decision"),
            "review": by_kind.get("review"),
        }
    )


@router.get(
    "/clients/{sk_id_curr}/decisions",
    responses=_ERRORS,
    summary="A client's stored decisions and reviews, newest first, a page at a time.",
)
async def client_decisions(
    request: Request,
    sk_id_curr: ClientId,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    page = await _read(request, lambda s: s.by_client(sk_id_curr, limit, offset))
    if page.total == 0:
        raise NotFoundError("Client not found")
    body: dict[str, Any] = {"sk_id_curr": sk_id_curr, "total": page.total, "limit": limit, "offset": offset}
    body["next_offset"] = offset + limit if offset + limit < page.total else None
    body["items"] = page.items
    return OrjsonResponse(body)


@router.get(
    "/clients/{sk_id_curr}/features",
    responses=_ERRORS,
    summary="The client's main features (the model card's drift-reference ones) beside the population.",
)
async def client_features(request: Request, sk_id_curr: ClientId) -> Response:
    scorer = request.app.state.scorer
    model = scorer.require_model()
    card = model.card
    reference = (card.reference or {}) if card is not None else {}
    try:
        cached = await scorer.features.fetch([sk_id_curr])
    except FeatureCacheError as exc:
        raise FeatureCacheUnavailableError(f"feature cache unavailable: {exc}") from exc
    if not bool(cached.found[0]):
        raise NotFoundError("Client not found")
    index = model.schema.index
    features = []
    for name, hist in reference.get("features", {}).items():
        if name not in index:
            continue
        value = float(cached.matrix[0, index[name]])
        features.append({"name": name, "value": value if value == value else None, "population": hist})
    return OrjsonResponse(
        {
            "sk_id_curr": sk_id_curr,
            "model_version": model.model_version,
            "threshold": model.threshold,
            "features": features,
            "score_population": reference.get("score"),
        }
    )
