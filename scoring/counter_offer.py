"""Counter-offers: for applications refused by score, the largest credit the model would accept.

For each refused row, candidate loans at the same term are built from its assembled model vector: the
credit amount at each step of a grid (95 % down to 10 % of the amount asked, 20 steps), floored to a
whole currency unit, the annuity scaled with it (the annuity / credit ratio — the term — is kept, to
the cent), the goods price and every other field unchanged. The derived features that depend on them
(credit/income, annuity/income, credit/goods, …) are recomputed by the assembler's own derivation
(:func:`feature_loader.derived.apply_derived`, as for any application), and every candidate of every
row is scored in one batched call through the caller's ``probabilities`` — the same probabilities the
decision compares with the threshold (calibrated, where the model is). The counter-offer is the largest
candidate that is accepted (``probability < threshold``) and that the caller's ``accept`` predicate
allows (the policy's rules, vectorised over the candidates); None when no candidate is, or when the
application has no positive credit amount and annuity. Pure: numpy and the feature schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from feature_loader.feature_schema import FeatureSchema
from scoring.policy import refused_mask
from scoring.results import CounterOffer

STEPS: tuple[float, ...] = tuple(float(s) for s in np.linspace(0.95, 0.10, 20))
CREDIT, ANNUITY = "AMT_CREDIT", "AMT_ANNUITY"
CHANGED = frozenset({CREDIT, ANNUITY})  # the inputs a candidate changes


class Candidates(Mapping[str, np.ndarray]):
    """The candidate loans as columns: each feature by name (the model's float32 values), the offered
    ``AMT_CREDIT`` / ``AMT_ANNUITY`` exactly (float64), and ``"row"``: the position of the application
    each candidate is for (among the rows passed to :func:`counter_offers`)."""

    def __init__(self, matrix: np.ndarray, schema: FeatureSchema, exact: dict[str, np.ndarray]) -> None:
        self._matrix, self._schema, self._exact = matrix, schema, exact

    @property
    def matrix(self) -> np.ndarray:
        """The candidates as assembled rows (n_candidates, F) of the model's features."""
        return self._matrix

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._exact:
            return self._exact[name]
        return self._matrix[:, self._schema.index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._exact, *self._schema.names]))

    def __len__(self) -> int:
        return len(set(self._exact) | set(self._schema.names))


Accept = Callable[[Candidates], np.ndarray]  # candidates → bool mask (n_candidates,)


def changed_columns(schema: FeatureSchema) -> list[int]:
    """The columns a candidate changes: the amounts and every derived feature computed from them (only
    the trees splitting on these are routed again, :class:`scoring.forest_partial.PartialForest`)."""
    from feature_loader.derived import DERIVED_BY_NAME

    names = {CREDIT, ANNUITY}
    for f in schema.derived_fields:
        derived = DERIVED_BY_NAME.get(f.name)
        if derived is None or names & set(derived.inputs):
            names.add(f.name)  # an unknown derivation: assume it changes
    return sorted(schema.index[n] for n in names if n in schema.index)


def counter_offers(
    matrix: np.ndarray,
    rows: np.ndarray,
    schema: FeatureSchema,
    derive: Callable[[np.ndarray, frozenset[str]], np.ndarray],
    probabilities: Callable[[np.ndarray, np.ndarray], np.ndarray],
    threshold: float,
    accept: Accept | None = None,
    steps: tuple[float, ...] = STEPS,
) -> list[CounterOffer | None]:
    """The counter-offer (or None) of each of ``rows`` of the assembled ``matrix`` (see the module
    docstring). ``derive(matrix, changed)`` recomputes in place the derived columns computed from the
    ``changed`` inputs and returns the matrix; ``probabilities(candidates, source)`` scores candidates
    as the decision does (``source``: the row of ``matrix`` each candidate comes from). ``steps``:
    fractions of the amount asked, largest first."""
    out: list[CounterOffer | None] = [None] * len(rows)
    if CREDIT not in schema.index or ANNUITY not in schema.index or not len(rows) or not steps:
        return out
    cj, aj = schema.index[CREDIT], schema.index[ANNUITY]
    base = matrix[np.asarray(rows, dtype=np.int64)]
    asked, annuity = base[:, cj].astype(np.float64), base[:, aj].astype(np.float64)
    with np.errstate(invalid="ignore"):
        usable = np.flatnonzero(np.isfinite(asked) & np.isfinite(annuity) & (asked > 0) & (annuity > 0))
    if not usable.size:
        return out
    fractions = np.asarray(steps, dtype=np.float64)
    amount = np.floor(asked[usable, None] * fractions[None, :])  # (m, S), whole currency units
    pay = np.round(amount * (annuity[usable] / asked[usable])[:, None], 2)
    n_steps = fractions.size
    cand = np.repeat(base[usable], n_steps, axis=0)
    cand[:, cj] = amount.ravel()
    cand[:, aj] = pay.ravel()
    cand = derive(cand, CHANGED)  # the other derived columns are the application's own
    source = np.repeat(np.asarray(rows, dtype=np.int64)[usable], n_steps)
    prob = np.asarray(probabilities(cand, source), dtype=np.float64).reshape(-1, n_steps)
    good = ~refused_mask(prob, threshold) & (amount > 0)
    if accept is not None:
        exact = {CREDIT: amount.ravel(), ANNUITY: pay.ravel(), "row": np.repeat(usable, n_steps)}
        good &= np.asarray(accept(Candidates(cand, schema, exact)), dtype=bool).reshape(-1, n_steps)
    first = good.argmax(axis=1)
    for k in np.flatnonzero(good.any(axis=1)).tolist():
        s = int(first[k])
        out[int(usable[k])] = CounterOffer(float(amount[k, s]), float(pay[k, s]), float(prob[k, s]))
    return out
