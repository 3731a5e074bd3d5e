"""What scoring produces: a :class:`ScoreResult` per application (probability, outcome, the policy rules
that fired, reason codes) and the :class:`BatchScore` of a batch. Pure: numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from scoring.policy import LABELS, RuleHit


# Named tuples, not dataclasses: a batch builds thousands of them (up to 4 codes and 12 features per
# explained decision) and a tuple is several times cheaper to make than a frozen dataclass.
class Reason(NamedTuple):
    feature: str
    value: object  # human-readable: level name for categoricals, float, or None for missing
    contribution: float  # to the log-odds of default


class CodeReason(NamedTuple):
    """One principal reason: a catalogue code, its text, its features' summed contribution (log-odds,
    positive = towards default) and its strongest features."""

    code: str
    text: str
    contribution: float
    features: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class CounterOffer:
    """The largest credit the model and the policy accept at the same term (:mod:`scoring.counter_offer`)."""

    amt_credit: float
    amt_annuity: float
    probability_default: float


@dataclass(frozen=True, slots=True)
class ScoreResult:
    sk_id_curr: int
    probability: float  # the model's, also when a rule decided
    decision: str  # ACCORD, REFUS or REFER (scoring.policy)
    threshold: float
    model_version: str
    feature_version: str
    features_found: bool
    features_age_s: float | None
    reasons: tuple[CodeReason, ...]  # reason codes, strongest first
    rules: tuple[RuleHit, ...] = ()  # the policy rules that fired
    policy_version: str | None = None
    counter_offer: CounterOffer | None = None  # REFUS by score, when counter-offers are on and one exists


@dataclass(frozen=True, slots=True)
class BatchScore:
    results: list[ScoreResult]
    inference_s: float  # assembly + routing + probabilities + policy
    reasons_s: float
    matrix: np.ndarray  # the assembled matrix (drift monitoring uses it)
    probabilities: np.ndarray | None = None  # (n,) float64, same values as the results'
    contributions: np.ndarray | None = None  # (m, F) of the explained rows (None: none explained)
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
    "rules",
    "policy_version",
    "counter_offer",
)


def build_results(
    sk_ids: Sequence[int],
    probabilities: list[float],
    labels: list[int],
    found: list[bool],
    per_row: tuple[dict[int, tuple[CodeReason, ...]], dict[int, tuple[RuleHit, ...]]],
    common: tuple[float, str, str, float | None, str | None],
    offers: dict[int, CounterOffer] | None = None,
) -> list[ScoreResult]:
    """The ScoreResults of a batch (``labels``: index into :data:`scoring.policy.LABELS`), built through
    the slots' own setters: the same frozen objects as ``ScoreResult(...)`` (a unit test compares them),
    cheaper than its generated ``__init__`` (a batch builds hundreds)."""
    threshold, model_version, feature_version, age, policy_version = common
    codes, rules = per_row
    offer = (offers or {}).get
    rows = zip(sk_ids, probabilities, labels, found, strict=True)
    if ScoreResult.__slots__ != _EXPECTED_SLOTS:  # the class changed: take the plain constructor
        return [
            ScoreResult(
                sk,
                p,
                LABELS[lab],
                threshold,
                model_version,
                feature_version,
                f,
                age if f else None,
                codes.get(k, ()),
                rules.get(k, ()),
                policy_version,
                offer(k),
            )
            for k, (sk, p, lab, f) in enumerate(rows)
        ]
    s_id, s_p, s_dec, s_thr, s_mv, s_fv, s_found, s_age, s_reasons, s_rules, s_pv, s_offer = _RESULT_SETTERS
    new = object.__new__
    get_codes, get_rules = codes.get, rules.get
    out: list[ScoreResult] = []
    append = out.append
    for k, (sk, p, lab, f) in enumerate(rows):
        res = new(ScoreResult)
        s_id(res, sk)
        s_p(res, p)
        s_dec(res, LABELS[lab])
        s_thr(res, threshold)
        s_mv(res, model_version)
        s_fv(res, feature_version)
        s_found(res, f)
        s_age(res, age if f else None)
        s_reasons(res, get_codes(k, ()))
        s_rules(res, get_rules(k, ()))
        s_pv(res, policy_version)
        s_offer(res, offer(k))
        append(res)
    return out
