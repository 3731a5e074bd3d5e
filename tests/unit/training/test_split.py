"""training.split and training.reference: deterministic stratified splits, reference histograms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.drift import bin_counts
from training.reference import histogram, top_by_gain
from training.split import stratified_folds, stratified_holdout


def _data(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(100_000, 100_000 + n))
    y = (rng.random(n) < 0.08).astype(np.int8)
    return ids, y


def test_holdout_is_stratified_and_keyed_on_ids() -> None:
    ids, y = _data()
    mask = stratified_holdout(ids, y, 0.2, seed=0)
    assert mask.sum() == round(0.2 * (y == 0).sum()) + round(0.2 * (y == 1).sum())
    assert y[mask].sum() == round(0.2 * y.sum())
    # same ids and labels in another row order → the same held-out clients
    perm = np.random.default_rng(5).permutation(ids.size)
    mask_perm = stratified_holdout(ids[perm], y[perm], 0.2, seed=0)
    assert set(ids[perm][mask_perm]) == set(ids[mask])
    assert set(ids[stratified_holdout(ids, y, 0.2, seed=1)]) != set(ids[mask])
    with pytest.raises(ValueError, match="fraction"):
        stratified_holdout(ids, y, 1.5, seed=0)


def test_folds_spread_each_class_evenly() -> None:
    ids, y = _data()
    fold = stratified_folds(ids, y, 5, seed=0)
    for cls in (0, 1):
        counts = np.bincount(fold[y == cls], minlength=5)
        assert counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="fewer than 5 folds"):
        stratified_folds(ids[:20], np.r_[np.ones(2), np.zeros(18)], 5, seed=0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e6, 1e6, allow_nan=False, width=32), st.just(float("nan")), st.just(0.0)),
        min_size=1,
        max_size=300,
    )
)
def test_histogram_matches_the_drift_binning(values: list[float]) -> None:
    v = np.array(values, dtype=np.float32)
    hist = histogram(v)
    edges = np.array(hist["edges"])
    assert len(hist["proportions"]) == len(hist["edges"]) + 1
    assert np.all(np.diff(edges) > 0)
    nan = np.isnan(v)
    assert hist["missing"] == pytest.approx(nan.mean())
    if (~nan).any():
        counts = bin_counts(edges, v)  # the live-drift binning of scoring.drift
        assert np.allclose(hist["proportions"], counts[:-1] / (~nan).sum())
        assert sum(hist["proportions"]) == pytest.approx(1.0)


def test_histogram_deciles_and_constant() -> None:
    hist = histogram(np.arange(1, 101, dtype=np.float32))
    assert hist["edges"] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert hist["proportions"] == pytest.approx([0.1] * 10)
    assert histogram(np.full(50, 3.0)) == {"edges": [], "proportions": [1.0], "missing": 0.0}


def test_top_by_gain_skips_unused_features() -> None:
    assert top_by_gain([0.0, 5.0, 1.0, 0.0], ["a", "b", "c", "d"], k=3) == ["b", "c"]
