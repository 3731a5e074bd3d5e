"""THE decision use case: the one function the stream worker, ``POST /predict`` and replay call.

:func:`decide` takes parsed applications and their cached client features and returns the decisions
of the applications it could score plus, for each one it could not, the reason:

1. the features must be the model's feature version (:meth:`PreparedModel.check_features`);
2. assembly: cached vectors + the application fields + derived features (:mod:`scoring.vector`);
3. scoring: the verified compiled forest (:mod:`scoring.forest`: bit-identical to ``booster.predict``
   on the float32 rows, i.e. to the offline path; one pass gives the probabilities and the leaves the
   reasons need), else LightGBM's own predict; then the model card's calibration
   (:mod:`scoring.calibration`) turns it into the served probability of default, on which the policy
   decides (:mod:`scoring.policy`: knock-out rules → REFUS, REFER rules → REFER, else REFUS when
   ``probability >= threshold``, a threshold on the same calibrated scale), the model's probability
   kept in every case;
4. reason codes (:mod:`scoring.reason_codes`) from per-row contributions on every REFUS and REFER,
   every row, or none: exact TreeSHAP (:func:`contributions`: :mod:`scoring.treeshap`, equal to
   LightGBM's ``pred_contrib``), or — ``attribution="path"`` — the older path attribution;
5. counter-offers (:mod:`scoring.counter_offer`) on every REFUS by score, when asked (the worker and
   ``/predict`` ask by default: settings ``stream.counter_offers`` / ``api.counter_offers``): the
   largest amount the model and the policy accept (no knock-out, below the REFER band);
6. isolation: an application carrying a field value the scorer cannot use is left out with the reason
   (:class:`Unscorable`), and the others are scored exactly as they would be without it.

Encoding the decisions into records is :mod:`scoring.decision` (shared by the three adapters too).
Pure: numpy, lightgbm, the feature schema and :mod:`schemas` only — no I/O, no clients (the policy
and the catalogue come bound in the :class:`PreparedModel`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeVar

import numpy as np

from schemas.exceptions import ErrorKind
from scoring.counter_offer import Accept, Candidates, counter_offers
from scoring.exceptions import InvalidInputError
from scoring.features import CachedFeatures
from scoring.policy import PolicyOutcome
from scoring.prepared import PreparedModel
from scoring.results import BatchScore, CodeReason, CounterOffer, ScoreResult, build_results

ReasonsMode = Literal["refusals", "all", "none"]
Attribution = Literal["exact", "path"]
T = TypeVar("T")


class Application(Protocol):
    """What scoring reads of an application (``schemas.events.LoanApplication``, :class:`ScoringInput`)."""

    @property
    def sk_id_curr(self) -> int: ...
    def scoring_fields(self) -> Mapping[str, object]: ...


@dataclass(frozen=True, slots=True)
class ScoringInput:
    """An application as a client id and the fields it carries (``POST /predict``, tests, benchmarks)."""

    sk_id_curr: int
    fields: Mapping[str, object]  # raw event field name → value, only the fields the event carries

    def scoring_fields(self) -> Mapping[str, object]:
        return self.fields


@dataclass(frozen=True, slots=True)
class DecideOptions:
    """``num_threads``: scoring threads — 1 (default) suits one worker process per core and
    micro-batches; 0 (one per core) suits large offline batches. Results do not depend on it."""

    reasons: ReasonsMode = "refusals"  # which decisions carry reason codes (refusals: REFUS and REFER)
    top_reasons: int = 4  # reason codes per decision (at most the catalogue's max_codes)
    num_threads: int = 1
    attribution: Attribution = "exact"  # exact TreeSHAP, or the older path attribution (benchmarks)
    counter_offers: bool = False  # a counter-offer on every REFUS by score (scoring.counter_offer)
    offer_accept: Accept | None = None  # what else a counter-offer must pass, beyond the policy's rules

    def __post_init__(self) -> None:
        if self.reasons not in ("refusals", "all", "none"):
            raise ValueError(f"reasons must be 'refusals', 'all' or 'none', got {self.reasons!r}")
        if self.attribution not in ("exact", "path"):
            raise ValueError(f"attribution must be 'exact' or 'path', got {self.attribution!r}")


DEFAULT_OPTIONS = DecideOptions()


@dataclass(frozen=True, slots=True)
class Unscorable:
    """An application :func:`decide` could not score: its position in the batch and why."""

    index: int
    message: str  # names the field at fault
    kind: ErrorKind = ErrorKind.UNSCORABLE


@dataclass(frozen=True, slots=True)
class Decided:
    """The outcome of :func:`decide` for a batch of applications."""

    score: BatchScore  # the decisions of the scored applications, in batch order
    scored: list[int]  # the position in the batch of each decision
    unscorable: list[Unscorable]  # every other application, with the reason
    features: CachedFeatures  # the cached features of the scored applications

    @property
    def results(self) -> list[ScoreResult]:
        return self.score.results

    def pick(self, items: Sequence[T]) -> list[T]:
        """The items (applications, records, …) of the scored applications, in batch order."""
        if len(items) != len(self.scored) + len(self.unscorable):
            raise ValueError(f"{len(items)} items for a batch of {len(self.scored) + len(self.unscorable)}")
        if not self.unscorable:
            return list(items)
        return [items[i] for i in self.scored]


def decide(
    model: PreparedModel,
    applications: Sequence[Application],
    features: CachedFeatures,
    *,
    options: DecideOptions = DEFAULT_OPTIONS,
    now: float | None = None,
) -> Decided:
    """Decide a batch (see the module docstring). Raises SchemaMismatchError when the features are not
    the model's version; never raises for one application's field (that application is unscorable)."""
    model.check_features(features)
    n = len(applications)
    if len(features) != n:
        raise ValueError(f"{n} applications but {len(features)} rows of cached features")
    fields = [a.scoring_fields() for a in applications]
    try:
        score = _score(model, applications, fields, features, options, now)
        return Decided(score, list(range(n)), [], features)
    except InvalidInputError:
        problems = model.assembler.invalid_rows(fields)
        if not problems:  # not one row's field: not for isolation to hide
            raise
    bad = {i for i, _ in problems}
    keep = [i for i in range(n) if i not in bad]
    unscorable = [Unscorable(i, message) for i, message in problems]
    kept = features.take(keep)
    score = _score(model, [applications[i] for i in keep], [fields[i] for i in keep], kept, options, now)
    return Decided(score, keep, unscorable, kept)


def _score(
    model: PreparedModel,
    applications: Sequence[Application],
    fields: Sequence[Mapping[str, object]],
    features: CachedFeatures,
    options: DecideOptions,
    now: float | None,
) -> BatchScore:
    """Assemble, score, apply the policy and explain a batch; raises InvalidInputError for an unusable
    field value."""
    t0 = time.perf_counter()
    found = np.asarray(features.found, dtype=bool)
    matrix = model.assembler.assemble(features.matrix, fields, found)
    return score_assembled(model, [a.sk_id_curr for a in applications], matrix, features, options, now, t0)


def score_assembled(
    model: PreparedModel,
    sk_ids: Sequence[int],
    matrix: np.ndarray,
    features: CachedFeatures,
    options: DecideOptions = DEFAULT_OPTIONS,
    now: float | None = None,
    started: float | None = None,
) -> BatchScore:
    """Score, apply the policy and explain rows already assembled for ``model``'s schema (``features``:
    their cached features, for the found flags and the cache age). :func:`decide` calls it after
    assembly; a challenger is scored through it on the champion's matrix (:mod:`scoring.challenger`).
    ``started``: when the batch's inference began (perf_counter), so inference_s includes assembly."""
    found = np.asarray(features.found, dtype=bool)
    age: float | None = None
    if features.loaded_at is not None:
        age = max(0.0, (time.time() if now is None else now) - features.loaded_at)
    t0 = time.perf_counter() if started is None else started
    raw, leaves = _probabilities(model, matrix, options)
    probabilities = _calibrated(model, raw, found)
    threshold = model.threshold
    outcome = model.policy.evaluate(matrix, probabilities, threshold, found, age)
    t1 = time.perf_counter()
    explain = _rows_to_explain(outcome.labels, options)
    contrib = _attributions(model, matrix, leaves, explain, options) if explain.size else None
    codes: dict[int, tuple[CodeReason, ...]] = {}
    if contrib is not None:
        towards_default = outcome.labels[explain] != 0  # REFUS and REFER: what pushed towards default
        picked = model.codes.codes(contrib, matrix[explain], towards_default, options.top_reasons)
        codes = dict(zip(explain.tolist(), picked, strict=True))
    t2 = time.perf_counter()
    offers = _counter_offers(model, matrix, leaves, outcome, found, options) if options.counter_offers else {}
    t3 = time.perf_counter()
    results = build_results(
        sk_ids,
        probabilities.tolist(),
        outcome.labels.tolist(),
        found.tolist(),
        (codes, outcome.hits(model.policy)),
        (threshold, model.model_version, model.feature_version, age, model.policy_version),
        offers,
    )
    return BatchScore(results, t1 - t0, t2 - t1, matrix, probabilities, contrib, t3 - t2)


def _calibrated(model: PreparedModel, probabilities: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The probabilities the policy compares with the threshold — of the batch and of counter-offer
    candidates alike: the one place the model card's calibration applies (after the forest: its
    bit-identical check is on the raw scores)."""
    return model.calibrator.apply(probabilities)


def _counter_offers(
    model: PreparedModel,
    matrix: np.ndarray,
    leaves: np.ndarray | None,
    outcome: PolicyOutcome,
    found: np.ndarray,
    options: DecideOptions,
) -> dict[int, CounterOffer]:
    """Counter-offers of the rows refused by score (not by a knock-out), by row
    (:mod:`scoring.counter_offer`): the largest amount the policy would ACCEPT — no knock-out fires and
    the probability is below the REFER band. With the compiled forest, candidates are routed again only
    through the nodes that split on what they change (:mod:`scoring.forest_partial`)."""
    rows = np.flatnonzero(model.policy.refused_by_score(outcome))
    if not rows.size:
        return {}
    plain = replace(options, reasons="none")  # candidates need no leaves for reasons
    partial = model.offer_forest if model.forest is not None and leaves is not None else None
    policy, extra = model.policy, options.offer_accept

    def score(candidates: np.ndarray, source: np.ndarray) -> np.ndarray:
        if partial is not None and leaves is not None:
            raw = partial.score(candidates, leaves, source)
        else:
            raw = _probabilities(model, candidates, plain)[0]
        return _calibrated(model, raw, found[source])

    def accept(candidates: Candidates) -> np.ndarray:
        ok = ~policy.knocked_out(candidates.matrix)
        return ok if extra is None else ok & np.asarray(extra(candidates), dtype=bool)

    cut = policy.accept_below(model.threshold)
    offers = counter_offers(matrix, rows, model.schema, model.assembler.derive, score, cut, accept)
    return {int(r): o for r, o in zip(rows.tolist(), offers, strict=True) if o is not None}


def _wants_reasons(options: DecideOptions) -> bool:
    return options.reasons != "none" and options.top_reasons > 0


def _rows_to_explain(labels: np.ndarray, options: DecideOptions) -> np.ndarray:
    """The rows the options ask reason codes for: every REFUS and REFER, every row, or none."""
    if not _wants_reasons(options):
        return np.zeros(0, dtype=np.int64)
    if options.reasons == "all":
        return np.arange(labels.shape[0])
    return np.flatnonzero(labels != 0)


def _probabilities(
    model: PreparedModel, matrix: np.ndarray, options: DecideOptions
) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities (n,) float64, each row's leaf in every tree or None when not routed for them)."""
    if matrix.shape[0] == 0:
        return np.zeros(0, dtype=np.float64), None
    if model.forest is not None:
        return model.forest.score(matrix, options.num_threads)
    booster, explainer = model.booster, model.explainer
    if _wants_reasons(options) and explainer.exact_probabilities:
        # one routing pass serves both: probabilities from the leaves are bit-identical to predict
        leaves = explainer.leaves(booster, matrix, options.num_threads)
        return explainer.probabilities_from_leaves(leaves), leaves
    predicted = booster.predict(matrix, num_threads=options.num_threads)
    return np.asarray(predicted, dtype=np.float64), None


def _attributions(
    model: PreparedModel,
    matrix: np.ndarray,
    leaves: np.ndarray | None,
    rows: np.ndarray,
    options: DecideOptions,
) -> np.ndarray:
    """Per-feature contributions (len(rows), F) float64 of the given rows: log-odds, positive = towards
    default — THE one attribution step the reason codes rank: exact TreeSHAP by default, the older path
    attribution (from the leaves the scoring pass already found) when asked."""
    if options.attribution == "exact":
        return contributions(model, matrix[rows], options.num_threads)
    explainer = model.explainer
    if leaves is not None:
        return explainer.contributions_of_rows(leaves, rows)
    return explainer.contributions(model.booster, matrix[rows], num_threads=options.num_threads)


def contributions(model: PreparedModel, matrix: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """Exact TreeSHAP contributions (n, n_features) of assembled rows, in log-odds, positive = towards
    default: the compiled TreeSHAP when the model has it (verified equal to ``pred_contrib`` at load),
    else LightGBM's ``pred_contrib`` itself."""
    if model.shap is not None:
        return model.shap.contributions(matrix)[:, :-1]
    out = model.booster.predict(matrix, pred_contrib=True, num_threads=num_threads)
    return np.asarray(out, dtype=np.float64)[:, :-1]
