"""The decision use case (scoring.decide.decide) on a prepared model: bit-identical to the offline path,
policy, reasons, schema guard, unscorable applications isolated with their reason."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from feature_loader.derived import apply_derived
from feature_loader.feature_schema import FeatureKind, FeatureSchema, FeatureSource
from scoring.calibration import Calibrator
from scoring.decide import Decided, DecideOptions, ScoringInput, Unscorable, decide
from scoring.exceptions import SchemaMismatchError
from scoring.features import CachedFeatures
from scoring.model import BoosterModel
from scoring.model_card import Calibration
from scoring.prepared import PreparedModel
from tests.fixtures.schemas import CATEGORICAL_EVENT, make_schema


def served(model: PreparedModel, x: np.ndarray) -> np.ndarray:
    """The offline served probability: LightGBM's own predict, then the model's calibration."""
    return model.calibrator.apply(model.booster.predict(x))


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
def model(schema: FeatureSchema) -> PreparedModel:
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
    calibration = Calibration(method="platt", a=0.8, b=-0.4)  # explicit: served ≠ raw
    threshold = float(np.quantile(Calibrator(calibration).apply(booster.predict(x)), 0.7))  # ~30 % refusals
    prepared = PreparedModel(BoosterModel(booster, schema, threshold, "tiny-1", calibration))
    assert prepared.forest is not None, prepared.forest_fallback  # the tests below score through it
    return prepared


def options(reasons: str = "refusals", top_reasons: int = 3) -> DecideOptions:
    return DecideOptions(reasons, top_reasons)  # type: ignore[arg-type]


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


def test_probability_is_bit_identical_to_the_offline_path(model: PreparedModel, tmp_path: Path) -> None:
    schema = model.schema
    table = feature_table(schema, 300, 7)
    path = tmp_path / "features.parquet"
    pl.DataFrame({name: table[:, j] for j, name in enumerate(schema.names)}).write_parquet(path)
    offline = pl.read_parquet(path).select(schema.names).to_numpy().astype(np.float32)
    expected = served(model, offline)

    inputs = [ScoringInput(100_000 + i, as_event_fields(schema, row)) for i, row in enumerate(table)]
    cached = CachedFeatures(stale_cache(schema, table, 3), np.ones(len(table), bool), schema.version, None)
    batch = decide(model, inputs, cached, options=options("none")).score

    np.testing.assert_array_equal(batch.matrix, offline)
    got = np.array([r.probability for r in batch.results])
    assert got.tobytes() == expected.tobytes()  # bit for bit
    assert batch.probabilities is not None and batch.probabilities.tobytes() == expected.tobytes()


def test_without_the_compiled_forest_scores_come_from_lightgbm_identically(model: PreparedModel) -> None:
    table = feature_table(model.schema, 200, 29)
    cached = CachedFeatures(table, np.ones(200, bool), model.schema.version, None)
    inputs = [ScoringInput(i + 1, {}) for i in range(200)]
    lightgbm = PreparedModel(model.model, use_forest=False)  # LightGBM's routing (pred_leaf), own explainer
    assert lightgbm.forest is None and "use_forest" in (lightgbm.forest_fallback or "")
    routed = decide(lightgbm, inputs, cached, options=options("all"))
    fast = decide(model, inputs, cached, options=options("all"))
    assert [r.probability for r in routed.results] == served(model, table).tolist()
    assert routed.results == fast.results


def test_without_the_exact_leaf_path_scores_fall_back_to_predict(model: PreparedModel) -> None:
    fallback = PreparedModel(model.model, use_forest=False)
    fallback.explainer.exact_probabilities = False  # as if the bit-for-bit check had failed
    table = feature_table(model.schema, 200, 29)
    cached = CachedFeatures(table, np.ones(200, bool), model.schema.version, None)
    inputs = [ScoringInput(i + 1, {}) for i in range(200)]
    slow = decide(fallback, inputs, cached, options=options("all"))
    fast = decide(model, inputs, cached, options=options("all"))
    assert [r.probability for r in slow.results] == served(model, table).tolist()
    assert slow.results == fast.results


def test_batch_equals_row_by_row(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 40, 11)
    found = np.arange(40) % 5 != 0
    inputs = [ScoringInput(i + 1, {"AMT_CREDIT": float(100_000 + 1000 * i)}) for i in range(40)]
    cached = CachedFeatures(table, found, schema.version, 0.0)
    whole = decide(model, inputs, cached, options=options("all"), now=10.0)
    for i in range(40):
        one = decide(model, inputs[i : i + 1], cached.take([i]), options=options("all"), now=10.0)
        assert one.results[0] == whole.results[i]


def test_policy_and_reasons_on_every_refusal(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 400, 5)
    inputs = [ScoringInput(i + 1, {}) for i in range(400)]
    cached = CachedFeatures(table, np.ones(400, bool), schema.version, None)
    batch = decide(model, inputs, cached, options=options(top_reasons=4)).score
    decisions = {r.decision for r in batch.results}
    assert decisions == {"ACCORD", "REFUS"}
    # the contributions behind the codes are exact TreeSHAP: LightGBM's own pred_contrib
    contrib = np.asarray(model.booster.predict(batch.matrix, pred_contrib=True, num_threads=1))[:, :-1]
    groups = [g.code for g in model.codes.catalogue.groups]
    for i, r in enumerate(batch.results):
        assert r.decision == ("REFUS" if r.probability >= model.threshold else "ACCORD")
        assert r.threshold == model.threshold and r.model_version == "tiny-1"
        assert r.policy_version == "threshold-only" and r.rules == ()
        if r.decision == "ACCORD":
            assert r.reasons == ()
            continue
        assert 1 <= len(r.reasons) <= 4 and len({c.code for c in r.reasons}) == len(r.reasons)
        sums = model.codes.group_sums(contrib[i : i + 1])[0]  # each code's contribution: its features' sum
        got = [c.contribution for c in r.reasons]
        assert got == sorted(got, reverse=True)
        # the strongest push towards default comes first
        assert got[0] == pytest.approx(sums.max(), rel=0, abs=1e-9)
        for code in r.reasons:
            g = groups.index(code.code)
            assert code.contribution == pytest.approx(sums[g]) and code.text
            assert code.features and all(x.contribution > 0 for x in code.features)
            for reason in code.features:
                j = schema.index[reason.feature]
                assert model.codes.group[j] == g
                assert reason.contribution == pytest.approx(contrib[i, j], rel=0, abs=1e-9)
                assert reason.value == schema.fields[j].decode(float(batch.matrix[i, j]))
    assert batch.inference_s > 0 and batch.reasons_s > 0


def test_path_attribution_on_request(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 200, 6)
    inputs = [ScoringInput(i + 1, {}) for i in range(200)]
    cached = CachedFeatures(table, np.ones(200, bool), schema.version, None)
    path = DecideOptions("all", 2, attribution="path")
    batch = decide(model, inputs, cached, options=path).score
    contrib = model.explainer.contributions(model.booster, batch.matrix)
    exact = decide(model, inputs, cached, options=DecideOptions("all", 2)).score
    assert [r.probability for r in batch.results] == [r.probability for r in exact.results]
    for i, r in enumerate(batch.results):
        for code in r.reasons:
            for reason in code.features:
                assert reason.contribution == pytest.approx(contrib[i, schema.index[reason.feature]])
    assert [r.reasons for r in batch.results] != [r.reasons for r in exact.results]  # they do differ
    with pytest.raises(ValueError, match="attribution"):
        DecideOptions(attribution="saabas")  # type: ignore[arg-type]


def test_categorical_reason_values_are_level_names(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 300, 9)
    batch = decide(
        model,
        [ScoringInput(i + 1, {}) for i in range(300)],
        CachedFeatures(table, np.ones(300, bool), schema.version, None),
        options=options("all", top_reasons=4),
    )
    values = [
        r.value
        for res in batch.results
        for code in res.reasons
        for r in code.features
        if r.feature in CATEGORICAL_EVENT and r.value is not None
    ]
    assert values and all(isinstance(v, str) and v in CATEGORICAL_EVENT_LEVELS for v in values)


CATEGORICAL_EVENT_LEVELS = {level for levels in CATEGORICAL_EVENT.values() for level in levels}


def test_reasons_modes(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 100, 13)
    inputs = [ScoringInput(i + 1, {}) for i in range(100)]
    cached = CachedFeatures(table, np.ones(100, bool), schema.version, None)
    none = decide(model, inputs, cached, options=options("none"))
    every = decide(model, inputs, cached, options=options("all", top_reasons=2))
    assert all(r.reasons == () for r in none.results)
    assert all(1 <= len(r.reasons) <= 2 for r in every.results)
    assert [r.probability for r in none.results] == [r.probability for r in every.results]
    with pytest.raises(ValueError, match="reasons must be"):
        options("some")


def test_unknown_clients_are_flagged_and_scored_on_application_fields(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 2, 17)
    found = np.array([True, False])
    inputs = [ScoringInput(1, {}), ScoringInput(2, {"AMT_CREDIT": 500_000.0, "AMT_INCOME_TOTAL": 100_000.0})]
    batch = decide(model, inputs, CachedFeatures(table, found, schema.version, 1000.0), now=1060.0).score
    known, unknown = batch.results
    assert known.features_found and known.features_age_s == 60.0
    assert not unknown.features_found and unknown.features_age_s is None
    assert batch.matrix[1, schema.index["CREDIT_INCOME_RATIO"]] == 5.0
    assert np.isnan(batch.matrix[1, schema.index["EXT_SOURCE_1"]])
    assert 0.0 < unknown.probability < 1.0


def test_missing_cache_helper_scores_on_application_fields(model: PreparedModel) -> None:
    schema = model.schema
    cached = CachedFeatures.missing(1, schema)
    decided = decide(model, [ScoringInput(9, {"AMT_CREDIT": 1.0})], cached)
    assert not decided.results[0].features_found


def test_schema_mismatch_is_refused(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 1, 19)
    with pytest.raises(SchemaMismatchError, match="reload the cache"):
        decide(
            model, [ScoringInput(1, {})], CachedFeatures(table, np.ones(1, bool), "0123456789abcdef", None)
        )


def test_features_of_another_batch_are_refused(model: PreparedModel) -> None:
    table = feature_table(model.schema, 2, 19)
    with pytest.raises(ValueError, match="1 applications but 2 rows"):
        decide(
            model, [ScoringInput(1, {})], CachedFeatures(table, np.ones(2, bool), model.feature_version, None)
        )


def test_bad_field_value_is_a_clear_reason(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 1, 23)
    decided = decide(
        model,
        [ScoringInput(1, {"AMT_ANNUITY": "lots"})],
        CachedFeatures(table, np.ones(1, bool), schema.version, None),
    )
    assert decided.results == [] and decided.scored == []
    [bad] = decided.unscorable
    assert bad.index == 0 and bad.kind.value == "unscorable" and "AMT_ANNUITY" in bad.message


def test_empty_batch(model: PreparedModel) -> None:
    schema = model.schema
    empty = np.zeros((0, len(schema)), dtype=np.float32)
    decided = decide(model, [], CachedFeatures(empty, np.zeros(0, bool), schema.version, None))
    batch = decided.score
    assert batch.results == [] and batch.matrix.shape == (0, len(schema))
    assert decided.scored == [] and decided.unscorable == [] and decided.pick([]) == []


def test_results_are_the_objects_the_dataclass_constructor_builds(model: PreparedModel) -> None:
    from dataclasses import fields, replace

    from scoring.results import ScoreResult

    schema = model.schema
    table = feature_table(schema, 40, 23)
    found = np.arange(40) % 3 != 0
    inputs = [ScoringInput(i + 1, {}) for i in range(40)]
    batch = decide(model, inputs, CachedFeatures(table, found, schema.version, 10.0), now=70.0)
    for res in batch.results:
        built = ScoreResult(*(getattr(res, f.name) for f in fields(ScoreResult)))
        assert res == built and hash(res) == hash(built) and repr(res) == repr(built)
        assert replace(res) == res
        with pytest.raises(AttributeError):
            res.probability = 0.5  # type: ignore[misc]
    assert {r.decision for r in batch.results} <= {"ACCORD", "REFUS"}
    assert [r.features_age_s for r in batch.results[:3]] == [None, 60.0, 60.0]


# --- unscorable applications ------------------------------------------------------------------------------
BAD_VALUES = ("lots", True, float("inf"), float("nan"), [1.0])


@pytest.mark.parametrize("reasons", ["refusals", "all", "none"])
def test_unscorable_applications_are_isolated_and_the_rest_decided_as_alone(
    model: PreparedModel, reasons: str
) -> None:
    schema = model.schema
    n = 60
    table = feature_table(schema, n, 31)
    found = np.arange(n) % 4 != 0
    cached = CachedFeatures(table, found, schema.version, 100.0)
    bad_rows = {3: "AMT_ANNUITY", 17: "AMT_CREDIT", 18: "HOUR_APPR_PROCESS_START", 59: "AMT_INCOME_TOTAL"}
    inputs = []
    for i in range(n):
        fields: dict[str, object] = {
            "AMT_CREDIT": float(200_000 + 5_000 * i),
            "NAME_CONTRACT_TYPE": "Cash loans",
        }
        if i in bad_rows:
            fields[bad_rows[i]] = BAD_VALUES[i % len(BAD_VALUES)]
        inputs.append(ScoringInput(1_000 + i, fields))
    opts = options(reasons)
    decided = decide(model, inputs, cached, options=opts, now=160.0)

    assert [u.index for u in decided.unscorable] == sorted(bad_rows)
    for u in decided.unscorable:
        assert u.kind.value == "unscorable" and bad_rows[u.index] in u.message
    good = [i for i in range(n) if i not in bad_rows]
    assert decided.scored == good
    assert decided.pick(inputs) == [inputs[i] for i in good]
    with pytest.raises(ValueError, match="items for a batch of 60"):
        decided.pick(inputs[:-1])
    assert [r.sk_id_curr for r in decided.results] == [1_000 + i for i in good]
    np.testing.assert_array_equal(decided.features.found, found[good])
    # each scored application is decided exactly as it is alone, and as the batch without the bad ones
    alone = [decide(model, [inputs[i]], cached.take([i]), options=opts, now=160.0).results[0] for i in good]
    assert decided.results == alone
    without = decide(model, [inputs[i] for i in good], cached.take(good), options=opts, now=160.0)
    assert decided.results == without.results
    assert decided.score.matrix.tobytes() == without.score.matrix.tobytes()


def test_a_batch_of_only_unscorable_applications(model: PreparedModel) -> None:
    schema = model.schema
    table = feature_table(schema, 3, 37)
    inputs = [ScoringInput(i, {"AMT_CREDIT": bad}) for i, bad in enumerate(("x", False, float("-inf")))]
    decided = decide(model, inputs, CachedFeatures(table, np.ones(3, bool), schema.version, None))
    assert decided.results == [] and decided.scored == [] and decided.pick(inputs) == []
    assert [u.index for u in decided.unscorable] == [0, 1, 2]
    assert all("AMT_CREDIT" in u.message for u in decided.unscorable)
    assert decided.score.matrix.shape == (0, len(schema)) and len(decided.features) == 0


def test_applications_carry_their_fields_themselves(model: PreparedModel) -> None:
    """decide reads any object with sk_id_curr and scoring_fields() (the worker's LoanApplication)."""
    from schemas.events import LoanApplication

    schema = model.schema
    table = feature_table(schema, 2, 41)
    cached = CachedFeatures(table, np.ones(2, bool), schema.version, None)
    apps = [
        LoanApplication(sk_id_curr=7, AMT_CREDIT=300_000.0, NAME_CONTRACT_TYPE="Revolving loans"),
        LoanApplication(sk_id_curr=8),
    ]
    as_inputs = [ScoringInput(a.sk_id_curr, a.scoring_fields()) for a in apps]
    assert decide(model, apps, cached).results == decide(model, as_inputs, cached).results
    assert isinstance(decide(model, apps, cached), Decided)
    assert Unscorable(0, "x").kind.value == "unscorable"


def test_calibration_is_applied_after_the_bit_identical_forest(model: PreparedModel) -> None:
    table = feature_table(model.schema, 200, 31)
    raw = model.booster.predict(table)
    assert model.forest is not None
    forest_raw, _ = model.forest.score(table, 1)
    assert forest_raw.tobytes() == raw.tobytes()  # the forest's check stays on the booster's output
    cached = CachedFeatures(table, np.ones(200, bool), model.schema.version, None)
    got = decide(model, [ScoringInput(i + 1, {}) for i in range(200)], cached, options=options("none"))
    probabilities = np.array([r.probability for r in got.results])
    assert not np.allclose(probabilities, raw)  # the calibration is really applied
    assert probabilities.tobytes() == model.calibrator.apply(raw).tobytes()
    assert [r.decision == "REFUS" for r in got.results] == (probabilities >= model.threshold).tolist()


def test_a_model_without_calibration_serves_the_booster_probability(model: PreparedModel) -> None:
    plain = PreparedModel(BoosterModel(model.booster, model.schema, model.threshold, "tiny-plain"))
    assert plain.calibrator.identity
    table = feature_table(model.schema, 50, 37)
    cached = CachedFeatures(table, np.ones(50, bool), model.schema.version, None)
    got = decide(plain, [ScoringInput(i + 1, {}) for i in range(50)], cached, options=options("none"))
    assert [r.probability for r in got.results] == model.booster.predict(table).tolist()
