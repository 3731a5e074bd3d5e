"""Pure decoding: a record of the decisions topic → a row of the ``decisions`` table (or nothing).

The record is read as a plain dict, not through the pydantic contract, so that decisions of every
contract version (and fields added by later ones: rules, reason codes, counter-offer, policy version,
review) are stored whole. Only the indexed columns are required.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

from decision_store.exceptions import UndecodableDecisionError
from decision_store.schema import KIND_DECISION, KIND_REVIEW

_TEXT_MAX = 128


def _text(doc: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > _TEXT_MAX:
        raise UndecodableDecisionError(f"field {name}: expected a non-empty string of at most {_TEXT_MAX}")
    return value


def _probability(doc: dict[str, Any], name: str) -> float:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UndecodableDecisionError(f"field {name}: expected a finite number")
    if not 0.0 <= value <= 1.0:
        raise UndecodableDecisionError(f"field {name}: {value} is outside [0, 1]")
    return float(value)


def _client(doc: dict[str, Any]) -> int:
    value = doc.get("sk_id_curr")
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise UndecodableDecisionError("field sk_id_curr: expected a 64-bit integer")
    return value


def parse_time(value: object, name: str = "decided_at") -> datetime:
    """An ISO-8601 string or epoch seconds → an aware UTC datetime."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise UndecodableDecisionError(f"field {name}: expected an ISO-8601 time or epoch seconds")


def decode_decision(value: bytes | None, stored_at: datetime) -> dict[str, Any] | None:
    """The row of one decision record; None for a replay's decision (not a decision anyone was told).

    Raises :class:`UndecodableDecisionError` naming the field at fault.
    """
    if not value:
        raise UndecodableDecisionError("empty record")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UndecodableDecisionError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UndecodableDecisionError("not a JSON object")
    if doc.get("is_replay") is True:
        return None
    review = doc.get("review")
    if review is not None and not isinstance(review, dict):
        raise UndecodableDecisionError("field review: expected an object or null")
    return {
        "application_id": _text(doc, "application_id"),
        "kind": KIND_DECISION if review is None else KIND_REVIEW,
        "sk_id_curr": _client(doc),
        "decision": _text(doc, "decision"),
        "probability_default": _probability(doc, "probability_default"),
        "score": _probability(doc, "score"),
        "model_version": _text(doc, "model_version"),
        "policy_version": _text(doc, "policy_version", required=False),
        "decided_at": parse_time(doc.get("decided_at")),
        "stored_at": stored_at,
        "document": doc,
    }
