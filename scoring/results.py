"""What scoring produces: a :class:`ScoreResult` per application (probability, decision, reasons) and
the :class:`BatchScore` of a batch. Pure: numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scoring.policy import ACCORD, REFUS


@dataclass(frozen=True, slots=True)
class Reason:
    feature: str
    value: object  # human-readable: level name for categoricals, float, or None for missing
    contribution: float  # to the log-odds of default


@dataclass(frozen=True, slots=True)
class CounterOffer:
    """The largest credit the model accepts at the same term (:mod:`scoring.counter_offer`)."""

    amt_credit: float
    amt_annuity: float
    probability_default: float


@dataclass(frozen=True, slots=True)
class ScoreResult:
    sk_id_curr: int
    probability: float
    decision: str
    threshold: float
    model_version: str
    feature_version: str
    features_found: bool
    features_age_s: float | None
    reasons: tuple[Reason, ...]
    counter_offer: CounterOffer | None = None  # REFUS by score, when counter-offers are on and one exists


@dataclass(frozen=True, slots=True)
class BatchScore:
    results: list[ScoreResult]
    inference_s: float  # assembly + routing + probabilities
    reasons_s: float
    matrix: np.ndarray  # the assembled matrix (drift monitoring uses it)
    probabilities: np.ndarray | None = None  # (n,) float64, same values as the results'
    offers_s: float = 0.0  # counter-offers (assembly and scoring of the candidates)


_RESULT_SETTERS = tuple(getattr(ScoreResult, name).__set__ for name in ScoreResult.__slots__)
_EXPECTED_SLOTS = (
    "sk_id_curr",
    "probability",
    "decision",
    "threshold",
    "model_version",
    "feature_version",
    "features_found",
    "features_age_s",
    "reasons",
    "counter_offer",
)


def build_results(
    sk_ids: Sequence[int],
    probabilities: list[float],
    refused: list[bool],
    found: list[bool],
    per_row: dict[int, tuple[Reason, ...]],
    common: tuple[float, str, str, float | None],
    offers: dict[int, CounterOffer] | None = None,
) -> list[ScoreResult]:
    """The ScoreResults of a batch, built through the slots' own setters: the same frozen objects as
    ``ScoreResult(...)`` (a unit test compares them), cheaper than its generated ``__init__`` (a batch
    builds hundreds)."""
    threshold, model_version, feature_version, age = common
    offer = (offers or {}).get
    if ScoreResult.__slots__ != _EXPECTED_SLOTS:  # the class changed: take the plain constructor
        return [
            ScoreResult(
                sk,
                p,
                REFUS if r else ACCORD,
                threshold,
                model_version,
                feature_version,
                f,
                age if f else None,
                per_row.get(k, ()),
                offer(k),
            )
            for k, (sk, p, r, f) in enumerate(zip(sk_ids, probabilities, refused, found, strict=True))
        ]
    s_id, s_p, s_dec, s_thr, s_mv, s_fv, s_found, s_age, s_reasons, s_offer = _RESULT_SETTERS
    new = object.__new__
    get = per_row.get
    out: list[ScoreResult] = []
    append = out.append
    for k, (sk, p, r, f) in enumerate(zip(sk_ids, probabilities, refused, found, strict=True)):
        res = new(ScoreResult)
        s_id(res, sk)
        s_p(res, p)
        s_dec(res, REFUS if r else ACCORD)
        s_thr(res, threshold)
        s_mv(res, model_version)
        s_fv(res, feature_version)
        s_found(res, f)
        s_age(res, age if f else None)
        s_reasons(res, get(k, ()))
        s_offer(res, offer(k))
        append(res)
    return out
