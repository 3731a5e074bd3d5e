"""The scoring service: bit-identical to the offline path, policy, reasons, schema guard."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from feature_loader.derived import apply_derived
from feature_loader.feature_schema import FeatureKind, FeatureSchema, FeatureSource
from scoring.exceptions import InvalidInputError, SchemaMismatchError
from scoring.reasons import explainer_for
from scoring.service import BoosterModel, CachedFeatures, ScoringInput, prepare, score_batch
from tests.fixtures.schemas import CATEGORICAL_EVENT, make_schema


def feature_table(schema: FeatureSchema, n: int, seed: int) -> np.ndarray:
    """Rows as the offline feature build makes them: float32, categoricals as level index, derived filled."""
    rng = np.random.default_rng(seed)
    m = np.full((n, len(schema)), np.nan, dtype=np.float32)
    for f in schema.fields:
        j = schema.index[f.name]
        if f.source is FeatureSource.DERIVED:
            continue
        if f.kind is FeatureKind.CATEGORICAL:
            m[:, j] = rng.integers(0, len(f.categories or ()), n)
        elif f.name.startswith("AMT_"):
            m[:, j] = np.round(rng.lognormal(12, 0.6, n), 1)
        elif f.name.startswith("EXT_SOURCE"):
            m[:, j] = rng.random(n)
        elif f.name.startswith("DAYS_"):
            m[:, j] = -rng.integers(300, 25_000, n)
        else:
            m[:, j] = rng.integers(0, 24, n)
        m[rng.random(n) < 0.1, j] = np.nan
    apply_derived(m, schema)
    return m


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    return make_schema(extra_cached=4)


@pytest.fixture(scope="module")
def model(schema: FeatureSchema) -> BoosterModel:
    x = feature_table(schema, 3000, 0)
    rng = np.random.default_rng(1)
    ext = np.nan_to_num(x[:, schema.index["EXT_SOURCE_MEAN"]], nan=0.5)
    ratio = np.nan_to_num(x[:, schema.index["CREDIT_INCOME_RATIO"]], nan=3.0)
    logit = -4 * ext + 0.3 * ratio + (x[:, schema.index["NAME_CONTRACT_TYPE"]] == 1) * 1.0 - 0.5
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)
    data = lgb.Dataset(
        x,
        y,
        feature_name=list(schema.names),
        categorical_feature=list(schema.categorical_names),
        free_raw_data=False,
    )
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1, "seed": 0}
    booster = lgb.train(params, data, num_boost_round=40)
    threshold = float(np.quantile(booster.predict(x), 0.7))  # ~30 % refusals
    return BoosterModel(booster, schema, threshold, model_version="tiny-1")


def as_event_fields(schema: FeatureSchema, row: np.ndarray) -> dict[str, object]:
    """The raw application fields of an offline row (level names for categoricals)."""
    out: dict[str, object] = {}
    for f in schema.event_fields:
        value = f.decode(float(row[schema.index[f.name]]))
        out[f.name] = value
    return out


def stale_cache(schema: FeatureSchema, table: np.ndarray, seed: int) -> np.ndarray:
    """The cached vectors: right client features, but event fields from another application."""
    rng = np.random.default_rng(seed)
    cached = table.copy()
    for f in schema.event_fields:
        cached[:, schema.index[f.name]] = cached[rng.permutation(len(cached)), schema.index[f.name]]
    for f in schema.derived_fields:
        cached[:, schema.index[f.name]] = -1.0
    return cached


def test_probability_is_bit_identical_to_the_offline_path(model: BoosterModel, tmp_path: Path) -> None:
    schema = model.schema
    table = feature_table(schema, 300, 7)
    path = tmp_path / "features.parquet"
    pl.DataFrame({name: table[:, j] for j, name in enumerate(schema.names)}).write_parquet(path)
    offline = pl.read_parquet(path).select(schema.names).to_numpy().astype(np.float32)
    expected = model.booster.predict(offline)

    inputs = [ScoringInput(100_000 + i, as_event_fields(schema, row)) for i, row in enumerate(table)]
    cached = CachedFeatures(stale_cache(schema, table, 3), np.ones(len(table), bool), schema.version, None)
    batch = score_batch(model, inputs, cached, reasons="none")

    np.testing.assert_array_equal(batch.matrix, offline)
    got = np.array([r.probability for r in batch.results])
    assert got.tobytes() == expected.tobytes()  # bit for bit
    assert batch.probabilities is not None and batch.probabilities.tobytes() == expected.tobytes()


def test_without_the_exact_leaf_path_scores_fall_back_to_predict(model: BoosterModel) -> None:
    booster = lgb.Booster(model_str=model.booster.model_to_string())  # a fresh booster, own explainer
    explainer_for(booster).exact_probabilities = False  # as if the bit-for-bit check had failed
    fallback = BoosterModel(booster, model.schema, model.threshold, model_version="tiny-1")
    table = feature_table(model.schema, 200, 29)
    cached = CachedFeatures(table, np.ones(200, bool), model.schema.version, None)
    inputs = [ScoringInput(i + 1, {}) for i in range(200)]
    slow = score_batch(fallback, inputs, cached, reasons="all")
    fast = score_batch(model, inputs, cached, reasons="all")
    assert [r.probability for r in slow.results] == booster.predict(table).tolist()
    assert slow.results == fast.results


def test_batch_equals_row_by_row(model: BoosterModel) -> None:
    schema = model.schema
    table = feature_table(schema, 40, 11)
    found = np.arange(40) % 5 != 0
    inputs = [ScoringInput(i + 1, {"AMT_CREDIT": float(100_000 + 1000 * i)}) for i in range(40)]
    whole = score_batch(
        model, inputs, CachedFeatures(table, found, schema.version, 0.0), reasons="all", now=10.0
    )
    for i in range(40):
        one = score_batch(
            model,
            inputs[i : i + 1],
            CachedFeatures(table[i : i + 1], found[i : i + 1], schema.version, 0.0),
            reasons="all",
            now=10.0,
        )
        assert one.results[0] == whole.results[i]


def test_policy_and_reasons_on_every_refusal(model: BoosterModel) -> None:
    schema = model.schema
    table = feature_table(schema, 400, 5)
    inputs = [ScoringInput(i + 1, {}) for i in range(400)]
    batch = score_batch(
        model, inputs, CachedFeatures(table, np.ones(400, bool), schema.version, None), top_reasons=4
    )
    decisions = {r.decision for r in batch.results}
    assert decisions == {"ACCORD", "REFUS"}
    contrib = explainer_for(model.booster).contributions(model.booster, batch.matrix)
    for i, r in enumerate(batch.results):
        assert r.decision == ("REFUS" if r.probability >= model.threshold else "ACCORD")
        assert r.threshold == model.threshold and r.model_version == "tiny-1"
        if r.decision == "ACCORD":
            assert r.reasons == ()
            continue
        assert 1 <= len(r.reasons) <= 4
        got = [x.contribution for x in r.reasons]
        assert got == sorted(got, reverse=True)
        assert got[0] == pytest.approx(contrib[i].max())  # the strongest push towards default comes first
        for reason in r.reasons:
            j = schema.index[reason.feature]
            assert reason.contribution == pytest.approx(contrib[i, j])
            assert reason.value == schema.fields[j].decode(float(batch.matrix[i, j]))
    assert batch.inference_s > 0 and batch.reasons_s > 0


def test_categorical_reason_values_are_level_names(model: BoosterModel) -> None:
    schema = model.schema
    table = feature_table(schema, 300, 9)
    batch = score_batch(
        model,
        [ScoringInput(i + 1, {}) for i in range(300)],
        CachedFeatures(table, np.ones(300, bool), schema.version, None),
        top_reasons=len(schema),
        reasons="all",
    )
    values = [
        r.value
        for res in batch.results
        for r in res.reasons
        if r.feature in CATEGORICAL_EVENT and r.value is not None
    ]
    assert values and all(isinstance(v, str) and v in CATEGORICAL_EVENT_LEVELS for v in values)


CATEGORICAL_EVENT_LEVELS = {level for levels in CATEGORICAL_EVENT.values() for level in levels}


def test_reasons_modes(model: BoosterModel) -> None:
    schema = model.schema
    table = feature_table(schema, 100, 13)
    inputs = [ScoringInput(i + 1, {}) for i in range(100)]
    cached = CachedFeatures(table, np.ones(100, bool), schema.version, None)
    none = score_batch(model, inputs, cached, reasons="none")
    every = score_batch(model, inputs, cached, reasons="all", top_reasons=2)
    assert all(r.reasons == () for r in none.results)
    assert all(1 <= len(r.reasons) <= 2 for r in every.results)
    assert [r.probability for r in none.results] == [r.probability for r in every.results]
    with pytest.raises(ValueError, match="reasons must be"):
        score_batch(model, inputs, cached, reasons="some")  # type: ignore[arg-type]


def test_unknown_clients_are_flagged_and_scored_on_application_fields(model: BoosterModel) -> None:
    schema = model.schema
    table = feature_table(schema, 2, 17)
    found = np.array([True, False])
    inputs = [ScoringInput(1, {}), ScoringInput(2, {"AMT_CREDIT": 500_000.0, "AMT_INCOME_TOTAL": 100_000.0})]
    batch = score_batch(model, inputs, CachedFeatures(table, found, schema.version, 1000.0), now=1060.0)
    known, unknown = batch.results
    assert known.features_found and known.features_age_s == 60.0
    assert not unknown.features_found and unknown.features_age_s is None
    assert batch.matrix[1, schema.index["CREDIT_INCOME_RATIO"]] == 5.0
    assert np.isnan(batch.matrix[1, schema.index["EXT_SOURCE_1"]])
    assert 0.0 < unknown.probability < 1.0


def test_missing_cache_helper_scores_on_application_fields(model: BoosterModel) -> None:
    schema = model.schema
    cached = CachedFeatures.missing(1, schema)
    batch = score_batch(model, [ScoringInput(9, {"AMT_CREDIT": 1.0})], cached)
    assert not batch.results[0].features_found


def test_schema_mismatch_is_refused(model: BoosterModel) -> None:
    schema = model.schema
    table = feature_table(schema, 1, 19)
    with pytest.raises(SchemaMismatchError, match="reload the cache"):
        score_batch(
            model, [ScoringInput(1, {})], CachedFeatures(table, np.ones(1, bool), "0123456789abcdef", None)
        )


def test_bad_field_value_is_a_clear_error(model: BoosterModel) -> None:
    schema = model.schema
    table = feature_table(schema, 1, 23)
    with pytest.raises(InvalidInputError, match="AMT_ANNUITY"):
        score_batch(
            model,
            [ScoringInput(1, {"AMT_ANNUITY": "lots"})],
            CachedFeatures(table, np.ones(1, bool), schema.version, None),
        )


def test_empty_batch(model: BoosterModel) -> None:
    schema = model.schema
    prepare(model)
    empty = np.zeros((0, len(schema)), dtype=np.float32)
    batch = score_batch(model, [], CachedFeatures(empty, np.zeros(0, bool), schema.version, None))
    assert batch.results == [] and batch.matrix.shape == (0, len(schema))


def test_results_are_the_objects_the_dataclass_constructor_builds(model: BoosterModel) -> None:
    from dataclasses import fields, replace

    from scoring.service import ScoreResult

    schema = model.schema
    table = feature_table(schema, 40, 23)
    found = np.arange(40) % 3 != 0
    inputs = [ScoringInput(i + 1, {}) for i in range(40)]
    batch = score_batch(model, inputs, CachedFeatures(table, found, schema.version, 10.0), now=70.0)
    for res in batch.results:
        built = ScoreResult(*(getattr(res, f.name) for f in fields(ScoreResult)))
        assert res == built and hash(res) == hash(built) and repr(res) == repr(built)
        assert replace(res) == res
        with pytest.raises(AttributeError):
            res.probability = 0.5  # type: ignore[misc]
    assert {r.decision for r in batch.results} <= {"ACCORD", "REFUS"}
    assert [r.features_age_s for r in batch.results[:3]] == [None, 60.0, 60.0]
