"""Feature-vector assembly: event fields override the cached vector, derived features recomputed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from feature_loader.derived import apply_derived
from feature_loader.feature_schema import FeatureField, FeatureSource
from scoring.exceptions import InvalidInputError, SchemaMismatchError
from scoring.vector import VectorAssembler
from tests.fixtures.schemas import CATEGORICAL_EVENT, DERIVED, NUMERIC_EVENT, SUITE, make_schema

SCHEMA = make_schema()
F = len(SCHEMA)
ASSEMBLER = VectorAssembler(SCHEMA)  # pure, stateless after construction: shared by the tests

amounts = st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False), st.integers(0, 10**9))
event_values = {
    **{n: amounts for n in NUMERIC_EVENT if n != "HOUR_APPR_PROCESS_START"},
    "HOUR_APPR_PROCESS_START": st.one_of(st.none(), st.integers(0, 23)),
    **{
        n: st.one_of(st.none(), st.sampled_from(levels), st.text(max_size=8))
        for n, levels in CATEGORICAL_EVENT.items()
    },
}
carried_fields = st.fixed_dictionaries({}, optional=event_values)
whole_forms = st.fixed_dictionaries(event_values)  # every event field carried: the block path
cached_rows = hnp.arrays(
    np.float32, (F,), elements=st.one_of(st.just(np.nan), st.floats(-1e6, 1e6, width=32, allow_nan=False))
)


def _encode(field: FeatureField, value: object) -> np.float32:
    return np.float32(field.encode(value))


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.lists(st.tuples(cached_rows, carried_fields, st.booleans()), min_size=1, max_size=6),
        st.lists(st.tuples(cached_rows, whole_forms, st.booleans()), min_size=1, max_size=6),
    )
)
def test_event_overrides_only_carried_fields_and_derived_are_recomputed(
    batch: list[tuple[np.ndarray, dict[str, object], bool]],
) -> None:
    cached = np.stack([row for row, _, _ in batch])
    fields = [carried for _, carried, _ in batch]
    found = np.array([f for _, _, f in batch])
    before = cached.copy()

    out = ASSEMBLER.assemble(cached, fields, found)

    np.testing.assert_array_equal(cached, before)  # input untouched
    expected = cached.copy()
    expected[~found] = np.nan  # unknown client: application fields alone
    for i, carried in enumerate(fields):
        for name, value in carried.items():
            expected[i, SCHEMA.index[name]] = _encode(SCHEMA.field(name), value)
    apply_derived(expected, SCHEMA)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)  # NaN == NaN here; every other value bit-equal
    derived_cols = [SCHEMA.index[n] for n in DERIVED]
    for i, carried in enumerate(fields):
        for f in SCHEMA.fields:
            j = SCHEMA.index[f.name]
            if f.source is FeatureSource.DERIVED:
                continue
            if f.name in carried:
                np.testing.assert_array_equal(out[i, j], _encode(f, carried[f.name]))
            elif found[i]:
                np.testing.assert_array_equal(out[i, j], cached[i, j])  # not carried: cached value kept
            else:
                assert math.isnan(out[i, j])
    assert derived_cols  # the schema under test has derived fields


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(cached_rows, carried_fields, st.booleans()), min_size=2, max_size=8))
def test_batch_equals_row_by_row_bit_for_bit(batch: list[tuple[np.ndarray, dict[str, object], bool]]) -> None:
    cached = np.stack([row for row, _, _ in batch])
    fields = [carried for _, carried, _ in batch]
    found = np.array([f for _, _, f in batch])
    whole = ASSEMBLER.assemble(cached, fields, found)
    rows = [
        ASSEMBLER.assemble(cached[i : i + 1], fields[i : i + 1], found[i : i + 1]) for i in range(len(batch))
    ]
    assert whole.tobytes() == np.concatenate(rows).tobytes()


def test_derived_use_the_requested_amounts_not_the_cached_ones() -> None:
    cached = np.full((1, F), np.nan, dtype=np.float32)
    cached[0, SCHEMA.index["AMT_CREDIT"]] = 100_000
    cached[0, SCHEMA.index["AMT_INCOME_TOTAL"]] = 50_000
    out = ASSEMBLER.assemble(cached, [{"AMT_CREDIT": 400_000.0}], np.array([True]))
    assert out[0, SCHEMA.index["CREDIT_INCOME_RATIO"]] == np.float32(8.0)
    assert out[0, SCHEMA.index["AMT_INCOME_TOTAL"]] == 50_000


def test_unknown_client_is_scored_on_application_fields_alone() -> None:
    cached = np.ones((1, F), dtype=np.float32)  # whatever the cache returned, not found = NaN
    out = ASSEMBLER.assemble(
        cached, [{"AMT_CREDIT": 200_000, "AMT_INCOME_TOTAL": 100_000}], np.array([False])
    )
    assert out[0, SCHEMA.index["CREDIT_INCOME_RATIO"]] == 2.0
    assert math.isnan(out[0, SCHEMA.index["EXT_SOURCE_1"]])
    assert math.isnan(out[0, SCHEMA.index["NAME_CONTRACT_TYPE"]])


def test_null_field_means_unknown_and_unknown_level_is_missing() -> None:
    cached = np.zeros((1, F), dtype=np.float32)
    out = ASSEMBLER.assemble(
        cached, [{"AMT_GOODS_PRICE": None, "NAME_TYPE_SUITE": "Martian"}], np.array([True])
    )
    assert math.isnan(out[0, SCHEMA.index["AMT_GOODS_PRICE"]])
    assert math.isnan(out[0, SCHEMA.index["NAME_TYPE_SUITE"]])


@given(st.one_of(st.sampled_from(SUITE), st.text(max_size=10), st.none()))
def test_categorical_encoding_matches_feature_field(value: str | None) -> None:
    assembler = VectorAssembler(SCHEMA)
    expected = SCHEMA.field("NAME_TYPE_SUITE").encode(value)
    got = assembler.encode("NAME_TYPE_SUITE", value)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_fields_outside_the_schema_are_ignored() -> None:
    cached = np.zeros((1, F), dtype=np.float32)
    out = ASSEMBLER.assemble(cached, [{"NOT_A_FEATURE": "x", "EXT_SOURCE_1": 0.9}], np.array([True]))
    assert out[0, SCHEMA.index["EXT_SOURCE_1"]] == 0.0  # cached-source fields are not overridable by events


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("1000", "'AMT_CREDIT' must be a number"),
        (float("inf"), "'AMT_CREDIT' must be finite"),
        (float("nan"), "'AMT_CREDIT' must be finite"),
        (True, "number"),
        (10**400, "'AMT_CREDIT' is out of range"),
    ],
)
def test_bad_field_value_names_the_field(value: object, match: str) -> None:
    cached = np.zeros((3, F), dtype=np.float32)
    form = dict.fromkeys((*NUMERIC_EVENT, *CATEGORICAL_EVENT))  # a whole form, every field null
    for inputs in (
        [{"AMT_CREDIT": 1.0}, {"AMT_CREDIT": value}, {"AMT_CREDIT": None}],
        [{}, {"AMT_CREDIT": value}, {}],
        [form, {**form, "AMT_CREDIT": value}, form],  # whole forms: the block path must not take it
    ):
        with pytest.raises(InvalidInputError, match=match) as info:
            ASSEMBLER.assemble(cached, inputs, np.array([True, True, True]))
        assert "input 1" in str(info.value)


def test_shape_mismatches_are_refused() -> None:
    with pytest.raises(SchemaMismatchError, match="schema has"):
        ASSEMBLER.assemble(np.zeros((1, F + 1), dtype=np.float32), [{}])
    with pytest.raises(InvalidInputError, match="2 inputs but 1"):
        ASSEMBLER.assemble(np.zeros((1, F), dtype=np.float32), [{}, {}])
    with pytest.raises(InvalidInputError, match="found mask"):
        ASSEMBLER.assemble(np.zeros((2, F), dtype=np.float32), [{}, {}], np.ones(3, dtype=bool))


def test_empty_batch() -> None:
    out = ASSEMBLER.assemble(np.zeros((0, F), dtype=np.float32), [], np.zeros(0, dtype=bool))
    assert out.shape == (0, F)


bad_values = st.sampled_from(["1000", True, float("inf"), float("nan"), 10**400, [1.0], b"x"])
maybe_bad_fields = st.fixed_dictionaries(
    {},
    optional={
        **event_values,
        "AMT_CREDIT": st.one_of(amounts, bad_values),
        "HOUR_APPR_PROCESS_START": bad_values,
    },
)


maybe_bad_forms = st.fixed_dictionaries(
    {
        **event_values,
        "AMT_CREDIT": st.one_of(amounts, bad_values),
        "NAME_CONTRACT_TYPE": st.one_of(st.none(), bad_values),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.lists(maybe_bad_fields, min_size=1, max_size=8), st.lists(maybe_bad_forms, min_size=1, max_size=8)
    )
)
def test_invalid_rows_are_exactly_the_rows_assembly_refuses(fields: list[dict[str, object]]) -> None:
    """What decide() isolates: a row is listed iff assembling it alone raises, with the same message."""
    cached = np.zeros((len(fields), F), dtype=np.float32)
    found = np.ones(len(fields), dtype=bool)
    listed = dict(ASSEMBLER.invalid_rows(fields))
    for i, carried in enumerate(fields):
        try:
            ASSEMBLER.assemble(cached[i : i + 1], [carried], found[i : i + 1])
        except InvalidInputError as exc:
            assert i in listed and str(exc) == f"input 0: {listed[i]}"
        else:
            assert i not in listed
    if listed:
        with pytest.raises(InvalidInputError):
            ASSEMBLER.assemble(cached, fields, found)
    else:
        ASSEMBLER.assemble(cached, fields, found)


def _field_by_field(cached: np.ndarray, fields: list[dict[str, object]]) -> np.ndarray:
    """The reference: each carried event field encoded alone over the cached row, derived recomputed."""
    out = cached.copy()
    for i, carried in enumerate(fields):
        for name, value in carried.items():
            if name in SCHEMA.index:
                out[i, SCHEMA.index[name]] = _encode(SCHEMA.field(name), value)
    apply_derived(out, SCHEMA)
    return out


def test_whole_and_partial_forms_take_the_block_path_and_equal_the_field_by_field_path() -> None:
    rng = np.random.default_rng(3)
    forms = [
        {
            **{n: (None if rng.random() < 0.3 else float(rng.integers(0, 10**6))) for n in NUMERIC_EVENT},
            **{
                n: (None if rng.random() < 0.2 else str(rng.choice(levels)))
                for n, levels in CATEGORICAL_EVENT.items()
            },
            "HOUR_APPR_PROCESS_START": int(rng.integers(0, 24)),  # ints and floats mixed, as events carry
        }
        for _ in range(50)
    ]
    cached = rng.normal(size=(50, F)).astype(np.float32)
    whole = ASSEMBLER._numeric_block(forms)
    assert whole is not None and whole[1] is None  # every event carries every field: no absent mask
    assert ASSEMBLER._categorical_block(forms) is not None
    # partial forms: events lacking fields (and carrying one outside the schema) keep the block path;
    # a field not carried keeps the cached value, a null one is unknown (NaN)
    drop_num, drop_cat = NUMERIC_EVENT[0], next(iter(CATEGORICAL_EVENT))
    partial = [{**form, "unused": 1} for form in forms[:-2]] + [
        {k: v for k, v in forms[-2].items() if k != drop_num},
        {k: v for k, v in forms[-1].items() if k != drop_cat},
    ]
    block, absent = ASSEMBLER._numeric_block(partial) or (None, None)
    assert block is not None and absent is not None
    assert np.argwhere(absent).tolist() == [[48, ASSEMBLER._numeric_position[drop_num]]]
    levels = ASSEMBLER._categorical_block(partial)
    assert levels is not None and levels[1] is not None
    assert np.argwhere(levels[1]).tolist() == [[49, ASSEMBLER._categorical_position[drop_cat]]]
    for fields in (forms, partial):
        assert ASSEMBLER.assemble(cached, fields).tobytes() == _field_by_field(cached, fields).tobytes()
    out = ASSEMBLER.assemble(cached, partial)
    for row, name in ((48, drop_num), (49, drop_cat)):
        j = SCHEMA.index[name]
        assert out[row, j].tobytes() == cached[row, j].tobytes()  # not carried: the cached value
