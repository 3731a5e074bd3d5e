"""feature_loader.derived: pure, elementwise, batch-independent, NaN instead of inf."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from feature_loader.derived import DERIVED, apply_derived
from feature_loader.feature_schema import FeatureField, FeatureSchema, FeatureSource

INPUTS = sorted({name for d in DERIVED for name in d.inputs})
SCHEMA = FeatureSchema(
    fields=(
        *(FeatureField(name=n) for n in INPUTS),
        *(d.field() for d in DERIVED),
    )
)
N_IN = len(INPUTS)


def matrix_of(rows: list[dict[str, float]]) -> np.ndarray:
    m = np.full((len(rows), len(SCHEMA)), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        for name, value in row.items():
            m[i, SCHEMA.index[name]] = value
    return m


def derived(m: np.ndarray, name: str) -> np.ndarray:
    return m[:, SCHEMA.index[name]]


values = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, np.nan, 3.4e38, -3.4e38, 1e-45]),
)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 12), st.just(N_IN)), elements=values))
def test_rows_alone_equal_rows_in_batch_bit_for_bit(inputs: np.ndarray) -> None:
    whole = np.full((inputs.shape[0], len(SCHEMA)), np.nan, dtype=np.float32)
    whole[:, :N_IN] = inputs
    apply_derived(whole, SCHEMA)
    for i in range(inputs.shape[0]):
        single = np.full((1, len(SCHEMA)), np.nan, dtype=np.float32)
        single[0, :N_IN] = inputs[i]
        apply_derived(single, SCHEMA)
        assert single[0].view(np.uint32).tolist() == whole[i].view(np.uint32).tolist()
    assert not np.isinf(whole).any()
    assert (whole[:, :N_IN].view(np.uint32) == inputs.view(np.uint32)).all()  # inputs untouched


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 12), st.just(N_IN)), elements=values))
def test_each_column_is_its_definition_applied_alone(inputs: np.ndarray) -> None:
    """The fields sharing a function are computed in one call: each column is still bit for bit its own
    definition on its own inputs (float64, NaN for a non-finite result, float32)."""
    m = np.full((inputs.shape[0], len(SCHEMA)), np.nan, dtype=np.float32)
    m[:, :N_IN] = inputs
    apply_derived(m, SCHEMA)
    for d in DERIVED:
        args = [m[:, SCHEMA.index[name]].astype(np.float64) for name in d.inputs]
        with np.errstate(all="ignore"):
            alone = d.fn(*args).astype(np.float32)
        alone[~np.isfinite(alone)] = np.nan
        assert derived(m, d.name).view(np.uint32).tolist() == alone.view(np.uint32).tolist(), d.name


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 12), st.just(N_IN)), elements=values),
    hnp.arrays(np.float32, st.tuples(st.just(12), st.just(2)), elements=values),
)
def test_changed_inputs_recompute_only_their_columns_bit_for_bit(inputs: np.ndarray, new: np.ndarray) -> None:
    """Rows derived once, then two inputs changed (what a counter-offer candidate does): deriving only
    the columns computed from them gives exactly the whole derivation; the other columns are not
    written."""
    changed = frozenset({"AMT_CREDIT", "AMT_ANNUITY"})
    n = inputs.shape[0]
    rows = np.full((n, len(SCHEMA)), np.nan, dtype=np.float32)
    rows[:, :N_IN] = inputs
    apply_derived(rows, SCHEMA)
    for k, name in enumerate(sorted(changed)):
        rows[:, SCHEMA.index[name]] = new[:n, k]
    whole = rows.copy()
    apply_derived(whole, SCHEMA)
    untouched = [SCHEMA.index[d.name] for d in DERIVED if changed.isdisjoint(d.inputs)]
    assert untouched and len(untouched) < len(DERIVED)
    partial = rows.copy()
    partial[:, untouched] = 7.0  # a sentinel: must survive
    apply_derived(partial, SCHEMA, changed)
    assert (partial[:, untouched] == 7.0).all()
    partial[:, untouched] = whole[:, untouched]
    assert (partial.view(np.uint32) == whole.view(np.uint32)).all()


def test_known_values() -> None:
    m = matrix_of(
        [
            {"AMT_CREDIT": 300000, "AMT_INCOME_TOTAL": 100000, "AMT_ANNUITY": 15000,
             "AMT_GOODS_PRICE": 250000, "CNT_FAM_MEMBERS": 4, "DAYS_EMPLOYED": -1000, "DAYS_BIRTH": -10000,
             "EXT_SOURCE_1": 0.2, "EXT_SOURCE_2": 0.4, "EXT_SOURCE_3": 0.6,
             "BURO_ACTIVE_DEBT_SUM": 50000, "BURO_ACTIVE_CREDIT_SUM": 200000},
        ]
    )  # fmt: skip
    apply_derived(m, SCHEMA)
    expect = {
        "CREDIT_INCOME_RATIO": 3.0,
        "ANNUITY_INCOME_RATIO": 0.15,
        "CREDIT_ANNUITY_RATIO": 20.0,
        "CREDIT_GOODS_RATIO": 1.2,
        "CREDIT_GOODS_DIFF": 50000.0,
        "INCOME_PER_FAMILY_MEMBER": 25000.0,
        "EMPLOYED_AGE_RATIO": 0.1,
        "EXT_SOURCE_MEAN": 0.4,
        "EXT_SOURCE_MIN": 0.2,
        "EXT_SOURCE_MAX": 0.6,
        "EXT_SOURCE_STD": float(np.std([0.2, 0.4, 0.6])),
        "EXT_SOURCE_PROD": 0.048,
        "EXT_SOURCE_WEIGHTED": (0.4 + 0.4 + 1.8) / 6,
        "EXT_SOURCE_NAN_COUNT": 0.0,
        "BURO_ACTIVE_DEBT_INCOME_RATIO": 0.5,
        "BURO_ACTIVE_DEBT_CREDIT_RATIO": 0.25,
        "TOTAL_ANNUITY_INCOME_RATIO": 0.15,  # no bureau annuity counts as 0
    }
    for name, value in expect.items():
        assert derived(m, name)[0] == pytest.approx(value, rel=1e-6), name


def test_missing_ext_sources_and_zero_denominators() -> None:
    m = matrix_of(
        [
            {"EXT_SOURCE_2": 0.5, "AMT_CREDIT": 1000, "AMT_INCOME_TOTAL": 0, "AMT_ANNUITY": 0},
            {"AMT_CREDIT": 3.0e38, "AMT_INCOME_TOTAL": 1e-30},  # float32 overflow
        ]
    )
    apply_derived(m, SCHEMA)
    assert derived(m, "EXT_SOURCE_MEAN")[0] == 0.5 and derived(m, "EXT_SOURCE_STD")[0] == 0.0
    assert derived(m, "EXT_SOURCE_NAN_COUNT")[0] == 2 and np.isnan(derived(m, "EXT_SOURCE_PROD")[0])
    assert np.isnan(derived(m, "EXT_SOURCE_MEAN")[1]) and derived(m, "EXT_SOURCE_NAN_COUNT")[1] == 3
    assert np.isnan(derived(m, "CREDIT_INCOME_RATIO")).all()  # x/0 and overflow → NaN, not inf
    assert np.isnan(derived(m, "CREDIT_ANNUITY_RATIO")[0])
    assert not np.isinf(m).any()


def test_days_employed_code_and_document_count() -> None:
    docs = {f"FLAG_DOCUMENT_{i}": 0.0 for i in range(2, 22)} | {
        "FLAG_DOCUMENT_3": 1.0,
        "FLAG_DOCUMENT_8": 1.0,
    }
    m = matrix_of(
        [
            {"DAYS_EMPLOYED": 365243, "DAYS_BIRTH": -20000, "OWN_CAR_AGE": 5, **docs},  # pensioner code
            {"DAYS_EMPLOYED": -2000, "DAYS_BIRTH": -10000, "OWN_CAR_AGE": 5, "FLAG_DOCUMENT_5": 1.0},
            {},  # nothing known
        ]
    )
    apply_derived(m, SCHEMA)
    assert derived(m, "DAYS_EMPLOYED_ANOM")[:2].tolist() == [1.0, 0.0]
    assert np.isnan(derived(m, "EMPLOYED_AGE_RATIO")[0]) and np.isnan(derived(m, "CAR_AGE_EMPLOYED_RATIO")[0])
    assert derived(m, "EMPLOYED_AGE_RATIO")[1] == pytest.approx(0.2)
    assert derived(m, "CAR_AGE_EMPLOYED_RATIO")[1] == pytest.approx(-0.0025)
    assert derived(m, "DOCUMENT_COUNT")[:2].tolist() == [2.0, 1.0]  # absent flags count as not provided
    assert np.isnan(m[2, [SCHEMA.index[n] for n in ("DAYS_EMPLOYED_ANOM", "DOCUMENT_COUNT")]]).all()


def test_refuses_bad_matrix_and_unknown_derived_field() -> None:
    with pytest.raises(ValueError, match="float32"):
        apply_derived(np.zeros((2, len(SCHEMA)), dtype=np.float64), SCHEMA)
    with pytest.raises(ValueError, match=r"\(n, "):
        apply_derived(np.zeros((2, 3), dtype=np.float32), SCHEMA)
    unknown = FeatureSchema(
        fields=(FeatureField(name="X"), FeatureField(name="Y", source=FeatureSource.DERIVED))
    )
    with pytest.raises(ValueError, match="'Y' has no definition"):
        apply_derived(np.zeros((1, 2), dtype=np.float32), unknown)
    partial = FeatureSchema(fields=(FeatureField(name="AMT_CREDIT"), DERIVED[0].field()))
    with pytest.raises(ValueError, match="needs input 'AMT_INCOME_TOTAL'"):
        apply_derived(np.zeros((1, 2), dtype=np.float32), partial)


def test_only_derived_columns_are_written() -> None:
    m = matrix_of([{"AMT_CREDIT": 10, "AMT_INCOME_TOTAL": 5}])
    m[0, SCHEMA.index["AMT_ANNUITY"]] = 7
    before = m[:, :N_IN].copy()
    apply_derived(m, SCHEMA)
    assert np.array_equal(m[:, :N_IN], before, equal_nan=True)
    assert derived(m, "CREDIT_INCOME_RATIO")[0] == 2.0


def test_derived_names_unique_and_inputs_not_derived() -> None:
    names = [d.name for d in DERIVED]
    assert len(names) == len(set(names))
    assert not set(INPUTS) & set(names)


def test_ratios_follow_the_event_amounts_after_a_merge() -> None:
    """Online: event fields overwrite the cached ones, then derived fields are recomputed from them."""
    cached = matrix_of([{"AMT_CREDIT": 200000, "AMT_INCOME_TOTAL": 100000, "AMT_ANNUITY": 10000}])
    apply_derived(cached, SCHEMA)
    assert derived(cached, "CREDIT_INCOME_RATIO")[0] == 2.0
    merged = cached.copy()
    merged[0, SCHEMA.index["AMT_CREDIT"]] = 500000  # the amount requested by the new application
    apply_derived(merged, SCHEMA)
    assert derived(merged, "CREDIT_INCOME_RATIO")[0] == 5.0
    assert derived(merged, "CREDIT_ANNUITY_RATIO")[0] == 50.0
    assert derived(merged, "ANNUITY_INCOME_RATIO")[0] == derived(cached, "ANNUITY_INCOME_RATIO")[0]
