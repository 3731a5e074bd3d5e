"""Exact TreeSHAP (scoring.treeshap) against LightGBM's own ``pred_contrib``, to 1e-9.

Models exercise every routing rule (NaN either way, missing type None and Zero, categorical bitsets
over several words, tiny values) and every way a contribution is computed (per-tree tables, per-leaf
tables, the formulas per row), on probe rows and training-like rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.decide import ScoringInput, contributions, decide
from scoring.features import CachedFeatures
from scoring.forest import probe_rows
from scoring.model import load_model
from scoring.prepared import PreparedModel
from scoring.treeshap import TreeShap, compile_treeshap, verify
from tests.fixtures.models import synthetic_matrix

N_FEATURES = 8


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    x[:, 2] = rng.integers(0, 40, n)  # categorical with many levels: bitsets over two words
    x[:, 5] = rng.integers(0, 4, n)
    x[:, 6] = np.where(rng.random(n) < 0.4, 0.0, x[:, 6])
    logit = x[:, 0] - 0.8 * x[:, 1] + (x[:, 2] % 7 == 3) + 0.5 * (x[:, 5] == 2) + (x[:, 6] == 0) * 0.7
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x[rng.random(x.shape) < 0.12] = np.nan
    return x.astype(np.float32), y


def _train(rounds: int = 40, **params: Any) -> lightgbm.Booster:
    x, y = _data(2000, 0)
    base = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1, "seed": 0}
    base.update(params)
    ds = lightgbm.Dataset(x, y, categorical_feature=[2, 5], free_raw_data=False)
    return lightgbm.train(base, ds, num_boost_round=rounds)


def _assert_exact(shap: TreeShap, booster: lightgbm.Booster, x: np.ndarray) -> None:
    expected = np.asarray(booster.predict(x, pred_contrib=True, num_threads=1))
    got = shap.contributions(x)
    assert got.shape == expected.shape == (len(x), N_FEATURES + 1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


_BOOSTERS: dict[str, lightgbm.Booster] = {}


@pytest.mark.parametrize(
    "params",
    [{}, {"use_missing": False}, {"zero_as_missing": True}, {"num_leaves": 15, "max_cat_to_onehot": 64}],
    ids=["nan-missing", "no-missing", "zero-as-missing", "15-leaves-one-hot-cats"],
)
@pytest.mark.parametrize(
    "limits", [(8, 8), (8, 0), (0, 0), (2, 3)], ids=["tree-tables", "leaf-tables", "formulas", "mixed"]
)
def test_equals_pred_contrib(params: dict[str, Any], limits: tuple[int, int]) -> None:
    key = repr(sorted(params.items()))
    booster = _BOOSTERS[key] = _BOOSTERS.get(key) or _train(**params)
    shap = TreeShap(booster, *limits)
    if limits == (8, 8) and params.get("num_leaves", 7) <= 9:
        assert shap.tabled_trees == booster.num_trees()  # the path that production models take
    if limits == (0, 0):
        assert shap.tabled_trees == shap.tabled_leaves == 0
    x, _ = _data(300, seed=7)
    _assert_exact(shap, booster, np.vstack([x, probe_rows(booster, 256)]))


def test_zero_as_missing_model_has_zero_rule_nodes() -> None:
    """The zero-as-missing case above only tests the Zero rule if such nodes exist."""
    text = _train(zero_as_missing=True).model_to_string()
    kinds = {
        int(v) >> 2 & 3
        for ln in text.splitlines()
        if ln.startswith("decision_type=")
        for v in ln[14:].split()
    }
    assert 1 in kinds


_CACHE: dict[str, Any] = {}


def _cached() -> tuple[lightgbm.Booster, TreeShap]:
    if not _CACHE:
        booster = _train(rounds=30, num_leaves=12)
        _CACHE["b"], _CACHE["s"] = booster, TreeShap(booster)
    return _CACHE["b"], _CACHE["s"]


special = st.sampled_from(
    [np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-35, -0.5, -1.0, 0.5, 2.999, 39.0, 40.0, 64.0, 3e9, -3e9, np.inf]
)
values = st.one_of(special, st.floats(-5, 50, width=32))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(values, min_size=N_FEATURES, max_size=N_FEATURES), min_size=1, max_size=40))
def test_any_rows_exact_and_additive(rows: list[list[float]]) -> None:
    booster, shap = _cached()
    x = np.asarray(rows, dtype=np.float32)
    _assert_exact(shap, booster, x)
    raw = booster.predict(x, raw_score=True, num_threads=1)  # contributions + expected value = log-odds
    np.testing.assert_allclose(shap.contributions(x).sum(axis=1), raw, rtol=0, atol=1e-9)


def test_verify_names_a_difference_and_compile_falls_back() -> None:
    booster, shap = _cached()
    other = _train(rounds=31, num_leaves=12)  # one more tree: contributions differ
    problem = verify(shap, other, probe_rows(other, 64))
    assert problem is not None and "differ from pred_contrib" in problem
    assert compile_treeshap(booster)[1] is None
    linear = _train(rounds=3, linear_tree=True)
    none, why = compile_treeshap(linear)
    assert none is None and why is not None and "linear" in why
    with pytest.raises(Exception, match=r"expected \(n, 8\)"):
        shap.contributions(np.zeros((2, N_FEATURES + 1), dtype=np.float32))
    assert shap.contributions(np.zeros((0, N_FEATURES), dtype=np.float32)).shape == (0, N_FEATURES + 1)


def test_fixture_model_prepared_with_exact_contributions(small_model_dir: Path) -> None:
    """The test fixture model (real training code, categorical event and cached fields, NaN): the
    prepared model keeps the compiled TreeSHAP, and decide's contributions equal pred_contrib — also
    through the fallback (no compiled TreeSHAP: LightGBM's pred_contrib itself)."""
    model = PreparedModel(load_model(small_model_dir))
    assert model.shap is not None, model.shap_fallback
    x, _ = synthetic_matrix(model.schema, 400, seed=3)
    x = np.vstack([x, probe_rows(model.booster, 256)])  # + NaN, zeros, unseen levels
    expected = np.asarray(model.booster.predict(x, pred_contrib=True, num_threads=1))
    np.testing.assert_allclose(model.shap.contributions(x), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(contributions(model, x), expected[:, :-1], rtol=0, atol=1e-9)
    inputs = [ScoringInput(i, {}) for i in range(len(x))]
    cached = CachedFeatures(x, np.ones(len(x), bool), model.feature_version, None)
    exact = decide(model, inputs, cached).results
    model.shap, model.shap_fallback = None, "test: no compiled TreeSHAP"
    np.testing.assert_allclose(contributions(model, x), expected[:, :-1], rtol=0, atol=1e-9)
    fallback = decide(model, inputs, cached).results
    assert any(r.reasons for r in exact)
    for a, b in zip(exact, fallback, strict=True):
        assert [c.code for c in a.reasons] == [c.code for c in b.reasons]
        assert [c.contribution for c in a.reasons] == pytest.approx(
            [c.contribution for c in b.reasons], abs=1e-9
        )
        assert [[r.feature for r in c.features] for c in a.reasons] == [
            [r.feature for r in c.features] for c in b.reasons
        ]
