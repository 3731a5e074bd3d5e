"""PreparedModel: assembler, verified compiled forest (or why not) and explainer, each built once."""

from __future__ import annotations

import pickle
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

import scoring.prepared as prepared_module
from feature_loader.feature_schema import FeatureField, FeatureSchema
from scoring.decide import DecideOptions, ScoringInput, decide
from scoring.exceptions import SchemaMismatchError
from scoring.features import CachedFeatures
from scoring.model import BoosterModel

SCHEMA = FeatureSchema(fields=tuple(FeatureField(name=f"X{i}") for i in range(5)))
ALL_REASONS = DecideOptions("all")


def train(num_leaves: int, rounds: int) -> BoosterModel:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(x[:, 0] - x[:, 1])))).astype(int)
    params = {"objective": "binary", "num_leaves": num_leaves, "min_data_in_leaf": 2, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(x, y, feature_name=list(SCHEMA.names)), num_boost_round=rounds)
    return BoosterModel(booster, SCHEMA, 0.5, model_version="tiny")


@pytest.fixture(scope="module")
def small() -> BoosterModel:
    return train(num_leaves=7, rounds=20)


def batch(n: int, seed: int = 1) -> tuple[list[ScoringInput], CachedFeatures]:
    x = np.random.default_rng(seed).normal(size=(n, 5)).astype(np.float32)
    return [ScoringInput(i + 1, {}) for i in range(n)], CachedFeatures(
        x, np.ones(n, bool), SCHEMA.version, None
    )


def test_parts_are_built_once_and_every_decision_reuses_them(
    small: BoosterModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: dict[str, int] = {"forest": 0, "explainer": 0, "assembler": 0, "shap": 0}

    def counting(name: str, real: Any) -> Any:
        def build(*args: Any, **kwargs: Any) -> Any:
            built[name] += 1
            return real(*args, **kwargs)

        return build

    monkeypatch.setattr(prepared_module, "compile_forest", counting("forest", prepared_module.compile_forest))
    monkeypatch.setattr(
        prepared_module, "PathExplainer", counting("explainer", prepared_module.PathExplainer)
    )
    monkeypatch.setattr(
        prepared_module, "VectorAssembler", counting("assembler", prepared_module.VectorAssembler)
    )
    monkeypatch.setattr(
        prepared_module, "compile_treeshap", counting("shap", prepared_module.compile_treeshap)
    )
    model = prepared_module.PreparedModel(small)
    once = {"forest": 1, "explainer": 1, "assembler": 1, "shap": 1}
    assert built == once
    parts = (model.forest, model.explainer, model.assembler, model.shap)
    inputs, cached = batch(50)
    for _ in range(3):
        decide(model, inputs, cached, options=ALL_REASONS)
    assert built == once
    assert (model.forest, model.explainer, model.assembler, model.shap) == parts
    assert model.forest is not None and model.forest_fallback is None


def test_a_model_the_forest_cannot_reproduce_keeps_lightgbm_and_says_why() -> None:
    big = train(num_leaves=100, rounds=3)  # trees of more than 64 leaves
    assert max(t["num_leaves"] for t in big.booster.dump_model()["tree_info"]) > 64
    model = prepared_module.PreparedModel(big)
    assert model.forest is None and "leaves" in (model.forest_fallback or "")
    assert "LightGBM" in repr(model)
    assert model.shap is not None and "compiled TreeSHAP" in repr(model)  # 100-leaf trees: leaf by leaf
    inputs, cached = batch(30)
    decided = decide(model, inputs, cached, options=ALL_REASONS)
    assert [r.probability for r in decided.results] == big.booster.predict(cached.matrix).tolist()
    # one reason group here (made-up features: "other"): a row has a code iff some feature pushes its
    # way (towards default for a refusal, away from it for an approval)
    contrib = model.explainer.contributions(big.booster, cached.matrix)
    sign = np.array([1.0 if r.decision == "REFUS" else -1.0 for r in decided.results])
    assert [bool(r.reasons) for r in decided.results] == ((contrib * sign[:, None]) > 0).any(axis=1).tolist()
    assert any(r.reasons for r in decided.results)


def test_the_model_facts_come_from_the_loaded_model(small: BoosterModel) -> None:
    model = prepared_module.PreparedModel(small)
    assert (model.model_version, model.feature_version, model.threshold) == ("tiny", SCHEMA.version, 0.5)
    assert model.schema is SCHEMA and model.booster is small.booster
    assert model.card is None  # a bare booster has no card (a LoadedModel's is its own)


def test_features_of_another_version_are_refused_in_one_place(small: BoosterModel) -> None:
    model = prepared_module.PreparedModel(small)
    inputs, cached = batch(2)
    model.check_features(cached)
    other = CachedFeatures(cached.matrix, cached.found, "0123456789abcdef", None)
    with pytest.raises(SchemaMismatchError, match="0123456789abcdef") as info:
        model.check_features(other)
    with pytest.raises(SchemaMismatchError, match=str(info.value)[:40]):
        decide(model, inputs, other)


def test_a_pickled_model_is_prepared_again_with_the_same_decisions(small: BoosterModel) -> None:
    """What a spawned replay worker receives (a compiled forest holds a thread pool: not picklable)."""
    model = prepared_module.PreparedModel(small)
    copy = pickle.loads(pickle.dumps(model))
    assert isinstance(copy, prepared_module.PreparedModel) and copy is not model
    assert copy.forest is not None and copy.use_forest
    inputs, cached = batch(40)
    assert (
        decide(copy, inputs, cached, options=ALL_REASONS).results
        == decide(model, inputs, cached, options=ALL_REASONS).results
    )
    lightgbm = pickle.loads(pickle.dumps(prepared_module.PreparedModel(small, use_forest=False)))
    assert lightgbm.forest is None and not lightgbm.use_forest
