"""Partial rescoring (scoring.forest_partial) against the whole compiled forest, bit for bit.

Candidates differ from their application's row only in some columns (several candidates per row, as
counter-offers make them); models exercise NaN either way, missing type None and Zero, categorical
splits over two bitset words and one-hot categories. The compiled forest is itself pinned to LightGBM
bit for bit (test_forest.py).
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.forest import CompiledForest, probe_rows
from scoring.forest_partial import PartialForest, verify_partial

N_FEATURES = 8
CATEGORICAL = [2, 5]
SPECIAL = [np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-35, -0.5, -1.0, -1.5, 0.5, 2.999, 39.0, 40.0, 64.0, 3e9, -3e9]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    x[:, 2] = rng.integers(0, 40, n)
    x[:, 5] = rng.integers(0, 4, n)
    x[:, 6] = np.where(rng.random(n) < 0.4, 0.0, x[:, 6])
    logit = x[:, 0] - 0.8 * x[:, 1] + (x[:, 2] % 7 == 3) + 0.5 * (x[:, 5] == 2) + (x[:, 6] == 0) * 0.7
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x[rng.random(x.shape) < 0.12] = np.nan
    return x.astype(np.float32), y


def _train(seed: int = 0, rounds: int = 60, **params: Any) -> lightgbm.Booster:
    x, y = _data(3000, seed)
    base = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1, "seed": seed}
    ds = lightgbm.Dataset(x, y, categorical_feature=CATEGORICAL, free_raw_data=False)
    return lightgbm.train(base | params, ds, num_boost_round=rounds)


def _candidates(
    rows: np.ndarray, columns: list[int], per_row: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``per_row`` candidates of each row: the row with ``columns`` replaced (random, special values)."""
    rng = np.random.default_rng(seed)
    source = np.repeat(np.arange(len(rows)), per_row)
    cand = rows[source].copy()
    for j in columns:
        fresh = (
            rng.normal(0, 2, len(cand))
            if j not in CATEGORICAL
            else rng.integers(-2, 70, len(cand)).astype(np.float64)
        )
        special = rng.random(len(cand)) < 0.3
        fresh[special] = rng.choice(SPECIAL, int(special.sum()))
        cand[:, j] = fresh
    return cand.astype(np.float32), source


@pytest.mark.parametrize(
    "params",
    [{}, {"use_missing": False}, {"zero_as_missing": True}, {"num_leaves": 15, "max_cat_to_onehot": 64}],
    ids=["nan-missing", "no-missing", "zero-as-missing", "15-leaves-one-hot-cats"],
)
@pytest.mark.parametrize("columns", [[0, 1], [2], [5, 6], [1, 2, 6]])
def test_partial_rescoring_equals_the_whole_forest(params: dict[str, Any], columns: list[int]) -> None:
    booster = _train(**params)
    forest = CompiledForest(booster)
    rows = np.vstack([_data(300, seed=7)[0], probe_rows(booster, 64)])
    _, leaves = forest.score(rows)
    partial = PartialForest(forest, set(columns))
    assert partial.routed.size > 0
    cand, source = _candidates(rows, columns, per_row=5, seed=len(columns))
    expected, _ = forest.score(cand)
    assert partial.score(cand, leaves, source).tobytes() == expected.tobytes()
    order = np.random.default_rng(1).permutation(len(cand))  # candidates in any order, sources mixed
    assert partial.score(cand[order], leaves, source[order]).tobytes() == expected[order].tobytes()
    assert verify_partial(forest, partial, probe_rows(booster, 128), columns) is None


_MODELS: dict[str, Any] = {}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SPECIAL), st.floats(-5, 50, width=32)), min_size=1, max_size=40))
def test_any_changed_values_rescore_as_the_whole_forest(values: list[tuple[float, float]]) -> None:
    if "f" not in _MODELS:
        _MODELS["b"] = booster = _train(seed=3, zero_as_missing=True)
        _MODELS["f"] = forest = CompiledForest(booster)
        _MODELS["p"] = PartialForest(forest, {2, 6})
        _MODELS["rows"] = rows = probe_rows(booster, 16)
        _MODELS["leaves"] = forest.score(rows)[1]
    forest, partial, rows = _MODELS["f"], _MODELS["p"], _MODELS["rows"]
    source = np.arange(len(values)) % len(rows)
    cand = rows[source].copy()
    cand[:, 2], cand[:, 6] = np.asarray(values, dtype=np.float32).T
    assert partial.score(cand, _MODELS["leaves"], source).tobytes() == forest.score(cand)[0].tobytes()


def test_verify_detects_rows_changed_outside_the_partial_forests_features() -> None:
    booster = _train()
    forest = CompiledForest(booster)
    wrong = PartialForest(forest, {0})  # the probe rows change column 1 too
    assert verify_partial(forest, wrong, probe_rows(booster, 128), [0, 1]) is not None


def test_no_candidates() -> None:
    booster = _train(rounds=5)
    forest = CompiledForest(booster)
    partial = PartialForest(forest, {0})
    empty = np.zeros((0, N_FEATURES), dtype=np.float32)
    assert partial.score(empty, forest.score(empty)[1], np.zeros(0, dtype=np.int64)).shape == (0,)
