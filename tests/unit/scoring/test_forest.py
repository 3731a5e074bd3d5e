"""The compiled router (scoring.forest) against LightGBM itself, bit for bit.

Models are trained here on data built to exercise every decision rule: numerical splits with NaN going
either way, missing type None (``use_missing=False``) and Zero (``zero_as_missing=True``), categorical
splits with seen, unseen, negative, fractional, huge and NaN levels, tiny values around kZeroThreshold.
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.forest import CompiledForest, compile_forest, probe_rows, verify

N_FEATURES = 8
CATEGORICAL = [2, 5]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    x[:, 2] = rng.integers(0, 40, n)  # categorical, many levels (bitsets over two words)
    x[:, 5] = rng.integers(0, 4, n)
    x[:, 6] = np.where(rng.random(n) < 0.4, 0.0, x[:, 6])  # many exact zeros
    logit = x[:, 0] - 0.8 * x[:, 1] + (x[:, 2] % 7 == 3) + 0.5 * (x[:, 5] == 2) + (x[:, 6] == 0) * 0.7
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x[rng.random(x.shape) < 0.12] = np.nan
    return x.astype(np.float32), y


def _train(seed: int = 0, rounds: int = 60, **params: Any) -> lightgbm.Booster:
    x, y = _data(3000, seed)
    base = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1, "seed": seed}
    base.update(params)
    ds = lightgbm.Dataset(x, y, categorical_feature=CATEGORICAL, free_raw_data=False)
    return lightgbm.train(base, ds, num_boost_round=rounds)


def _assert_same(booster: lightgbm.Booster, x: np.ndarray, forest: CompiledForest) -> None:
    prob, leaves = forest.score(x)
    expected = np.asarray(booster.predict(x, num_threads=1), dtype=np.float64)
    expected_leaves = np.asarray(booster.predict(x, pred_leaf=True, num_threads=1)).reshape(leaves.shape)
    np.testing.assert_array_equal(leaves, expected_leaves)
    assert prob.tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"use_missing": False},
        {"zero_as_missing": True},
        {"num_leaves": 15, "max_cat_to_onehot": 64},
        {"num_leaves": 3, "sigmoid": 0.7},
        {"num_leaves": 64, "min_data_in_leaf": 3, "rounds": 20},
    ],
    ids=[
        "nan-missing",
        "no-missing",
        "zero-as-missing",
        "15-leaves-one-hot-cats",
        "sigmoid-0.7",
        "64-leaves",
    ],
)
def test_forest_reproduces_lightgbm_bit_for_bit(params: dict[str, Any]) -> None:
    booster = _train(**params)
    forest = CompiledForest(booster)
    x, _ = _data(2000, seed=7)
    _assert_same(booster, np.vstack([x, probe_rows(booster)]), forest)


def test_zero_as_missing_model_has_zero_rule_nodes() -> None:
    """The zero-as-missing case above is only a test of the Zero rule if such nodes exist."""
    text = _train(zero_as_missing=True).model_to_string()
    kinds = {
        int(v) >> 2 & 3
        for line in text.splitlines()
        if line.startswith("decision_type=")
        for v in line[14:].split()
    }
    assert 1 in kinds


special = st.sampled_from(
    [np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-35, -1e-35, -0.5, -1.0, -1.5, 0.5, 2.999, 39.0, 40.0, 63.0, 64.0,
     1e6, 3e9, -3e9, np.inf, -np.inf]
)  # fmt: skip
values = st.one_of(special, st.floats(-5, 50, width=32))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(values, min_size=N_FEATURES, max_size=N_FEATURES), min_size=1, max_size=70))
def test_any_rows_route_as_lightgbm(rows: list[list[float]]) -> None:
    booster = _cached_booster()
    _assert_same(booster, np.asarray(rows, dtype=np.float32), _cached_forest())


_MODELS: dict[str, object] = {}


def _cached_booster() -> lightgbm.Booster:
    if "b" not in _MODELS:
        _MODELS["b"] = _train(seed=3, zero_as_missing=False)
    return _MODELS["b"]  # type: ignore[return-value]


def _cached_forest() -> CompiledForest:
    if "f" not in _MODELS:
        _MODELS["f"] = CompiledForest(_cached_booster())
    return _MODELS["f"]  # type: ignore[return-value]


def test_threads_split_rows_without_changing_results() -> None:
    booster = _cached_booster()
    forest = _cached_forest()
    x, _ = _data(9000, seed=11)
    one = forest.score(x, num_threads=1)
    two = forest.score(x, num_threads=2)
    assert one[0].tobytes() == two[0].tobytes()
    np.testing.assert_array_equal(one[1], two[1])
    _assert_same(booster, x, forest)


def test_empty_and_wrong_shapes() -> None:
    forest = _cached_forest()
    prob, leaves = forest.score(np.zeros((0, N_FEATURES), dtype=np.float32))
    assert prob.shape == (0,) and leaves.shape == (0, forest.n_trees)
    with pytest.raises(Exception, match="expected \\(n, 8\\)"):
        forest.score(np.zeros((3, N_FEATURES + 1), dtype=np.float32))


def test_large_trees_fall_back_to_lightgbm_with_a_reason() -> None:
    booster = _train(num_leaves=100, rounds=3, min_data_in_leaf=2)
    assert max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) > 64
    forest, why = compile_forest(booster)
    assert forest is None and "leaves" in (why or "")


def test_non_binary_objective_falls_back() -> None:
    x, y = _data(500, 1)
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 7}, lightgbm.Dataset(x, y.astype(float)), 5
    )
    forest, why = compile_forest(booster)
    assert forest is None and "binary" in (why or "")


def test_verify_detects_a_wrong_router() -> None:
    booster = _cached_booster()
    other = _train(seed=9)  # another model's trees
    assert verify(CompiledForest(other), booster, probe_rows(booster)) is not None
    assert verify(_cached_forest(), booster, probe_rows(booster)) is None


def test_a_model_that_compiles_exactly_is_kept_with_no_reason() -> None:
    forest, why = compile_forest(_cached_booster())
    assert forest is not None and why is None
    _assert_same(_cached_booster(), probe_rows(_cached_booster(), seed=5), forest)
