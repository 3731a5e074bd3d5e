"""Derived features: pure, elementwise functions of other features of the vector.

Used by the feature build (offline) and by the scorer (online, after the event fields are merged over
the cached vector), through the same :func:`apply_derived`, so both produce bit-identical vectors.

Rules every function here follows:

* inputs are the float32 values of other (non-derived) columns, widened to float64;
* elementwise numpy only: no reduction whose result could depend on the batch (a row's value never
  depends on the other rows);
* division by zero, and any other non-finite result, gives NaN (never inf); the float64 result is cast
  to float32 once, and a value out of float32 range also becomes NaN.

Imports numpy and the schema only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from feature_loader.feature_schema import FeatureField, FeatureSchema, FeatureSource

Array = np.ndarray


@dataclass(frozen=True)
class DerivedFeature:
    name: str
    inputs: tuple[str, ...]
    fn: Callable[..., Array]  # float64 arrays (one per input, same shape) -> float64 array

    def field(self) -> FeatureField:
        return FeatureField(name=self.name, source=FeatureSource.DERIVED)


def _div(a: Array, b: Array) -> Array:  # floating-point warnings are silenced by apply_derived
    out = a / b
    out[b == 0] = np.nan
    return out


def _present(*cols: Array) -> tuple[Array, Array]:
    """Columns with NaN replaced by 0 (stacked: one per input), and the count of present (non-NaN)
    values per row (a count of booleans: exact whatever the order of the additions)."""
    stacked = np.stack(cols)
    missing = np.isnan(stacked)
    return np.where(missing, 0.0, stacked), (~missing).sum(axis=0, dtype=np.float64)


def _ext_mean(a: Array, b: Array, c: Array) -> Array:
    (fa, fb, fc), n = _present(a, b, c)
    return _div(fa + fb + fc, n)


def _ext_std(a: Array, b: Array, c: Array) -> Array:
    """Population standard deviation (ddof=0) of the present EXT_SOURCE values."""
    mean = _ext_mean(a, b, c)
    sq = [np.where(np.isnan(x), 0.0, (x - mean) ** 2) for x in (a, b, c)]
    _, n = _present(a, b, c)
    return np.sqrt(_div(sq[0] + sq[1] + sq[2], n))


def _pick(a: Array, b: Array, take_a: Array) -> Array:
    """Elementwise select ignoring NaN: a where ``take_a`` or b is NaN, else b (NaN only if both are).

    Explicit selects rather than np.fmin/np.fmax: those may return either zero for (+0.0, -0.0)
    depending on the SIMD path, i.e. on the batch size; a select is exact.
    """
    return np.where(np.isnan(b) | (take_a & ~np.isnan(a)), a, b)


def _ext_min(a: Array, b: Array, c: Array) -> Array:
    ab = _pick(a, b, a <= b)
    return _pick(ab, c, ab <= c)


def _ext_max(a: Array, b: Array, c: Array) -> Array:
    ab = _pick(a, b, a >= b)
    return _pick(ab, c, ab >= c)


def _ext_nan_count(a: Array, b: Array, c: Array) -> Array:
    _, n = _present(a, b, c)
    return 3.0 - n


def _ext_weighted(a: Array, b: Array, c: Array) -> Array:
    """2·EXT1 + 1·EXT2 + 3·EXT3 over the present sources, divided by the weights present."""
    (fa, fb, fc), _ = _present(a, b, c)
    w = 2.0 * ~np.isnan(a) + 1.0 * ~np.isnan(b) + 3.0 * ~np.isnan(c)
    return _div(2.0 * fa + 1.0 * fb + 3.0 * fc, w)


def _diff(a: Array, b: Array) -> Array:
    return a - b


def _product3(a: Array, b: Array, c: Array) -> Array:
    return a * b * c


# DAYS_EMPLOYED's code for "pensioner / unemployed" in the source data (kept as-is in the vector).
DAYS_EMPLOYED_CODE = 365243.0


def _employed_anomaly(days: Array) -> Array:
    """1 for the pensioner/unemployed code, 0 for a real number of days, NaN when unknown."""
    out = (days == DAYS_EMPLOYED_CODE).astype(np.float64)
    out[np.isnan(days)] = np.nan
    return out


def _employed_ratio(a: Array, b: Array, *, employed_first: bool) -> Array:
    """a / b with the DAYS_EMPLOYED code read as missing (its position says which input is the days)."""
    days = a if employed_first else b
    days = np.where(days == DAYS_EMPLOYED_CODE, np.nan, days)
    return _div(days, b) if employed_first else _div(a, days)


def _employed_age_ratio(employed: Array, birth: Array) -> Array:
    return _employed_ratio(employed, birth, employed_first=True)


def _car_age_employed_ratio(car_age: Array, employed: Array) -> Array:
    return _employed_ratio(car_age, employed, employed_first=False)


def _document_count(*flags: Array) -> Array:
    """Documents provided: the sum of the flags present, NaN when none is known."""
    filled, n = _present(*flags)
    zero = np.zeros((1, *n.shape))
    # elementwise, in a fixed order, from +0.0: a running sum is sequential (a reduction may pair terms)
    total = np.cumsum(np.concatenate([zero, filled]), axis=0)[-1]
    total[n == 0] = np.nan
    return total


def _total_annuity_income(annuity: Array, bureau_annuity: Array, income: Array) -> Array:
    """(requested annuity + annuities of the active bureau credits, none = 0) / income."""
    return _div(annuity + np.where(np.isnan(bureau_annuity), 0.0, bureau_annuity), income)


_EXT = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")
_DOCUMENTS = tuple(f"FLAG_DOCUMENT_{i}" for i in range(2, 22))


def _r(name: str, num: str, den: str) -> DerivedFeature:
    return DerivedFeature(name, (num, den), _div)


DERIVED: tuple[DerivedFeature, ...] = (
    _r("CREDIT_INCOME_RATIO", "AMT_CREDIT", "AMT_INCOME_TOTAL"),
    _r("ANNUITY_INCOME_RATIO", "AMT_ANNUITY", "AMT_INCOME_TOTAL"),
    _r("CREDIT_ANNUITY_RATIO", "AMT_CREDIT", "AMT_ANNUITY"),
    _r("CREDIT_GOODS_RATIO", "AMT_CREDIT", "AMT_GOODS_PRICE"),
    DerivedFeature("CREDIT_GOODS_DIFF", ("AMT_CREDIT", "AMT_GOODS_PRICE"), _diff),
    _r("INCOME_PER_FAMILY_MEMBER", "AMT_INCOME_TOTAL", "CNT_FAM_MEMBERS"),
    DerivedFeature("EMPLOYED_AGE_RATIO", ("DAYS_EMPLOYED", "DAYS_BIRTH"), _employed_age_ratio),
    _r("REGISTRATION_AGE_RATIO", "DAYS_REGISTRATION", "DAYS_BIRTH"),
    _r("ID_PUBLISH_AGE_RATIO", "DAYS_ID_PUBLISH", "DAYS_BIRTH"),
    _r("PHONE_CHANGE_AGE_RATIO", "DAYS_LAST_PHONE_CHANGE", "DAYS_BIRTH"),
    DerivedFeature("CAR_AGE_EMPLOYED_RATIO", ("OWN_CAR_AGE", "DAYS_EMPLOYED"), _car_age_employed_ratio),
    DerivedFeature("DAYS_EMPLOYED_ANOM", ("DAYS_EMPLOYED",), _employed_anomaly),
    DerivedFeature("DOCUMENT_COUNT", _DOCUMENTS, _document_count),
    DerivedFeature("EXT_SOURCE_MEAN", _EXT, _ext_mean),
    DerivedFeature("EXT_SOURCE_MIN", _EXT, _ext_min),
    DerivedFeature("EXT_SOURCE_MAX", _EXT, _ext_max),
    DerivedFeature("EXT_SOURCE_STD", _EXT, _ext_std),
    DerivedFeature("EXT_SOURCE_PROD", _EXT, _product3),
    DerivedFeature("EXT_SOURCE_WEIGHTED", _EXT, _ext_weighted),
    DerivedFeature("EXT_SOURCE_NAN_COUNT", _EXT, _ext_nan_count),
    _r("BURO_ACTIVE_DEBT_INCOME_RATIO", "BURO_ACTIVE_DEBT_SUM", "AMT_INCOME_TOTAL"),
    _r("BURO_ACTIVE_DEBT_CREDIT_RATIO", "BURO_ACTIVE_DEBT_SUM", "BURO_ACTIVE_CREDIT_SUM"),
    DerivedFeature(
        "TOTAL_ANNUITY_INCOME_RATIO",
        ("AMT_ANNUITY", "BURO_ACTIVE_ANNUITY_SUM", "AMT_INCOME_TOTAL"),
        _total_annuity_income,
    ),
    _r("CREDIT_PREV_CREDIT_RATIO", "AMT_CREDIT", "PREV_AMT_CREDIT_MEAN"),
    _r("ANNUITY_INST_PAYMENT_RATIO", "AMT_ANNUITY", "INST_AMT_PAYMENT_MEAN"),
    _r("CC_BALANCE_INCOME_RATIO", "CC_AMT_BALANCE_MEAN", "AMT_INCOME_TOTAL"),
)

DERIVED_BY_NAME: dict[str, DerivedFeature] = {d.name: d for d in DERIVED}


def apply_derived(matrix: np.ndarray, schema: FeatureSchema, changed: frozenset[str] | None = None) -> None:
    """Fill, in place, every derived column of a float32 ``(n, len(schema))`` matrix.

    Inputs are read from the matrix's other columns; the result depends on each row alone, so any
    batch split gives bit-identical rows. ``changed``: only the derived columns computed from one of
    these inputs (rows whose other derived columns are already right, e.g. counter-offer candidates
    copied from assembled rows with new amounts: the same values, for a fraction of the fixed cost).
    Raises ``ValueError`` for a matrix of the wrong shape or dtype, a derived field this module does
    not know, or a derived input absent from the schema.
    """
    if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[1] != len(schema):
        raise ValueError(
            f"apply_derived needs a float32 (n, {len(schema)}) matrix, got {matrix.dtype} {matrix.shape}"
        )
    steps, inputs = _plan_for(schema, changed)
    if not steps:
        return
    # every input column once, widened to float64, one contiguous row per input (inputs are never
    # derived columns, so all can be read before any is written)
    gathered = np.ascontiguousarray(matrix[:, inputs].T, dtype=np.float64)
    with np.errstate(all="ignore"):
        for fn, args, out_cols in steps:  # one call per function: (fields, n) arrays, elementwise
            out = fn(*(gathered[rows] for rows in args)).astype(np.float32)
            out[~np.isfinite(out)] = np.nan
            matrix[:, out_cols] = out.T  # one field: 1-d rows of gathered (views), one column


# a function, the rows of ``gathered`` for each of its arguments (one per field computed by it), and
# those fields' output columns: every derivation is elementwise, so the fields sharing a function (the
# ratios) are computed in one call over a (fields, n) array, each element exactly as on its own
_Step = tuple[Callable[..., Array], tuple[np.ndarray | int, ...], list[int] | int]
_PLANS: dict[tuple[str, frozenset[str] | None], tuple[list[_Step], list[int]]] = {}


def _plan_for(schema: FeatureSchema, changed: frozenset[str] | None = None) -> tuple[list[_Step], list[int]]:
    """Per schema (cached by version) and ``changed`` inputs: the steps computing the derived fields
    (all, or those computed from a ``changed`` input), and the input columns to gather."""
    key = (schema.version, changed)
    found = _PLANS.get(key)
    if found is not None:
        return found
    specs: list[tuple[DerivedFeature, tuple[int, ...], int]] = []
    for field in schema.derived_fields:
        spec = DERIVED_BY_NAME.get(field.name)
        if spec is None:
            raise ValueError(f"derived feature {field.name!r} has no definition in feature_loader.derived")
        try:
            cols = tuple(schema.index[name] for name in spec.inputs)
        except KeyError as exc:
            raise ValueError(f"derived feature {field.name!r} needs input {exc.args[0]!r}") from None
        if changed is not None and changed.isdisjoint(spec.inputs):
            continue
        specs.append((spec, cols, schema.index[field.name]))
    inputs = sorted({c for _, cols, _ in specs for c in cols})
    row_of = {c: k for k, c in enumerate(inputs)}
    by_fn: dict[Callable[..., Array], list[tuple[tuple[int, ...], int]]] = {}
    for spec, cols, out in specs:
        by_fn.setdefault(spec.fn, []).append((tuple(row_of[c] for c in cols), out))
    steps: list[_Step] = []
    for fn, group in by_fn.items():
        if len(group) == 1:
            steps.append((fn, group[0][0], group[0][1]))
            continue
        args = tuple(np.array(arg, dtype=np.intp) for arg in zip(*(r for r, _ in group), strict=True))
        steps.append((fn, args, [out for _, out in group]))
    plan = (steps, inputs)
    _PLANS[key] = plan
    return plan
