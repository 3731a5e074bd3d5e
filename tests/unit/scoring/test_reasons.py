"""Fast path attribution: exactly additive, agrees with TreeSHAP on the top features."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scoring.exceptions import ScoringError
from scoring.reasons import PathExplainer, reasons_by_pred_contrib, top_reasons

N_FEATURES = 12
CATEGORICAL = (3, 7)


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    for c in CATEGORICAL:
        x[:, c] = rng.integers(0, 6, n)
    x[rng.random(x.shape) < 0.15] = np.nan  # missing values: default directions matter
    logit = (
        1.5 * np.nan_to_num(x[:, 0])
        - np.nan_to_num(x[:, 1])
        + np.isin(x[:, 3], (1, 4)) * 1.2
        + 0.8 * np.isnan(x[:, 5])
        + 0.5 * np.nan_to_num(x[:, 2]) * np.nan_to_num(x[:, 6])
        - 2.0
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    return x, y


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    x, y = make_data(3000, 0)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "verbose": -1,
        "seed": 1,
        "num_threads": 1,
    }
    return lgb.train(params, lgb.Dataset(x, y, categorical_feature=list(CATEGORICAL)), num_boost_round=60)


@pytest.fixture(scope="module")
def explainer(booster: lgb.Booster) -> PathExplainer:
    return PathExplainer(booster)


def test_contributions_sum_to_the_raw_score(booster: lgb.Booster, explainer: PathExplainer) -> None:
    x, _ = make_data(500, 1)
    contrib = explainer.contributions(booster, x)
    raw = booster.predict(x, raw_score=True)
    assert contrib.shape == (500, N_FEATURES)
    np.testing.assert_allclose(explainer.expected_value + contrib.sum(axis=1), raw, rtol=0, atol=1e-9)
    assert np.abs(contrib).sum() > 0


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        (3, N_FEATURES),
        elements=st.one_of(st.just(np.nan), st.floats(-4, 4, width=32), st.integers(-1, 8).map(float)),
    )
)
def test_additivity_holds_for_any_row_including_missing_and_unseen_categories(
    booster: lgb.Booster, explainer: PathExplainer, x: np.ndarray
) -> None:
    contrib = explainer.contributions(booster, x)
    np.testing.assert_allclose(
        explainer.expected_value + contrib.sum(axis=1), booster.predict(x, raw_score=True), atol=1e-9, rtol=0
    )


def test_top_features_agree_with_tree_shap(booster: lgb.Booster, explainer: PathExplainer) -> None:
    x, _ = make_data(400, 2)
    fast = explainer.contributions(booster, x)
    shap = reasons_by_pred_contrib(booster, x)
    top1 = float(np.mean(fast.argmax(axis=1) == shap.argmax(axis=1)))
    top1_in_shap_top3 = float(
        np.mean(
            [f in set(s) for f, s in zip(fast.argmax(axis=1), np.argsort(-shap, axis=1)[:, :3], strict=True)]
        )
    )
    print(
        f"path attribution vs TreeSHAP: top-1 agreement {top1:.1%}, "
        f"top-1 within SHAP's top-3 {top1_in_shap_top3:.1%}"
    )
    assert top1 >= 0.6  # measured 73 %
    assert top1_in_shap_top3 >= 0.9  # measured 95 %
    # globally the same features matter
    assert set(np.argsort(-np.abs(fast).mean(axis=0))[:3]) == set(np.argsort(-np.abs(shap).mean(axis=0))[:3])


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        (4, N_FEATURES),
        elements=st.one_of(st.just(np.nan), st.floats(-1e6, 1e6, width=32), st.integers(-1, 8).map(float)),
    )
)
def test_probabilities_from_leaves_equal_predict_bit_for_bit(
    booster: lgb.Booster, explainer: PathExplainer, x: np.ndarray
) -> None:
    assert explainer.exact_probabilities  # verified on probe rows when built
    fast = explainer.probabilities_from_leaves(explainer.leaves(booster, x, num_threads=1))
    assert fast.tobytes() == np.asarray(booster.predict(x), dtype=np.float64).tobytes()


def test_non_binary_objective_has_no_exact_probability_path() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3))
    b = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1}, lgb.Dataset(x, x[:, 0]), 5)
    explainer = PathExplainer(b)
    assert not explainer.exact_probabilities
    with pytest.raises(ScoringError, match="no exact"):
        explainer.probabilities_from_leaves(explainer.leaves(b, x[:2].astype(np.float32)))
    contrib = explainer.contributions(b, x[:20].astype(np.float32))  # reasons still work
    np.testing.assert_allclose(explainer.expected_value + contrib.sum(1), b.predict(x[:20]), atol=1e-9)


def test_single_leaf_trees_add_only_to_the_expected_value() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (rng.random(200) < 0.3).astype(int)
    params = {
        "objective": "binary",
        "verbose": -1,
        "min_data_in_leaf": 500,
        "num_threads": 1,
    }  # no split possible
    b = lgb.train(params, lgb.Dataset(x, y), num_boost_round=5)
    explainer = PathExplainer(b)
    contrib = explainer.contributions(b, x)
    assert not contrib.any()
    np.testing.assert_allclose(explainer.expected_value, b.predict(x, raw_score=True), atol=1e-12)


def test_multiclass_models_are_refused() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 3))
    y = rng.integers(0, 3, 300)
    b = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1}, lgb.Dataset(x, y), 2
    )
    with pytest.raises(ScoringError, match="only binary"):
        PathExplainer(b)


def test_wrong_leaf_shape_is_refused(booster: lgb.Booster, explainer: PathExplainer) -> None:
    with pytest.raises(ScoringError, match="leaf indices"):
        explainer.contributions_from_leaves(np.zeros((2, 3), dtype=np.int32))


def test_top_reasons_order_and_sign() -> None:
    contrib = np.array([[0.5, -1.0, 2.0, 0.0, 0.1], [0.5, -1.0, 2.0, 0.0, -0.2]])
    refused = np.array([True, False])
    got = top_reasons(contrib, refused, 3)
    assert got[0] == [(2, 2.0), (0, 0.5), (4, 0.1)]  # refusal: what pushed towards default, largest first
    assert got[1] == [(1, -1.0), (4, -0.2)]  # accord: what pulled away from default; zero skipped
    assert top_reasons(contrib, refused, 10)[0] == [(2, 2.0), (0, 0.5), (4, 0.1), (1, -1.0)]  # zero skipped
    assert top_reasons(contrib[:0], refused[:0], 3) == []


def test_compiled_top_reasons_equal_the_sparse_path(booster: lgb.Booster, explainer: PathExplainer) -> None:
    x, _ = make_data(600, 21)
    x = x.astype(np.float32)
    leaves = explainer.leaves(booster, x, num_threads=1)
    rng = np.random.default_rng(4)
    rows = np.sort(rng.choice(len(x), 250, replace=False))
    refused = rng.random(250) < 0.5
    for k in (1, 3, x.shape[1] + 2):
        expected = top_reasons(explainer.contributions_from_leaves(leaves[rows]), refused, k)
        got = explainer.top_from_leaves(leaves, rows, refused, k)
        assert got == expected  # same features, same order, contributions equal to the bit
    assert explainer.top_from_leaves(leaves, rows[:0], refused[:0], 3) == []
    with pytest.raises(ScoringError, match="shape"):
        explainer.top_from_leaves(leaves[:, :2], rows, refused, 3)
