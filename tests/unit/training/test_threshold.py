"""training.threshold and training.evaluation: exact optimum of the business cost, AUC, ROC."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.evaluation import brier, roc_auc, roc_curve
from training.threshold import choose_threshold, confusion_at, cost_at, cost_curve


def test_known_optimum_on_a_constructed_case() -> None:
    #          neg  neg  neg  pos  neg  pos
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7])
    y = np.array([0, 0, 0, 1, 0, 1])
    # refusing from 0.4 up: FN 0, FP 1 → cost 1; any higher cut misses a default (≥ 10)
    choice = choose_threshold(y, p, fn_cost=10, fp_cost=1)
    assert choice.cost == 1
    assert choice.threshold == pytest.approx(0.35)  # midpoint between 0.4 and the next lower score
    assert choice.confusion.as_dict() == {"tn": 3, "fp": 1, "fn": 0, "tp": 2}
    # with a cheaper miss the optimum moves: fn_cost 0.5 → refuse only the 0.7 (one miss, cost 0.5)
    lenient = choose_threshold(y, p, fn_cost=0.5, fp_cost=1)
    assert lenient.cost == 0.5 and lenient.threshold == pytest.approx(0.65)
    assert lenient.confusion.as_dict() == {"tn": 4, "fp": 0, "fn": 1, "tp": 1}


def test_all_negative_labels_refuse_nobody() -> None:
    choice = choose_threshold([0, 0, 0], [0.2, 0.5, 0.9])
    assert choice.cost == 0 and choice.threshold > 0.9


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        choose_threshold([0, 1], [0.5])
    with pytest.raises(ValueError, match="NaN"):
        choose_threshold([0, 1], [0.5, float("nan")])
    with pytest.raises(ValueError, match="no labelled rows"):
        choose_threshold([], [])


labels_scores = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.05, 0.1, 0.2, 0.33, 0.5, 0.7, 0.9, 0.95]), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(labels_scores, st.sampled_from([(10.0, 1.0), (1.0, 1.0), (3.0, 7.0)]))
def test_choice_is_the_brute_force_optimum(data: tuple[list[int], list[float]], costs: tuple) -> None:
    y, p = np.array(data[0]), np.array(data[1])
    fn_c, fp_c = costs
    brute = min(cost_at(y, p, t, fn_c, fp_c) for t in [*np.unique(p), np.inf])
    choice = choose_threshold(y, p, fn_c, fp_c)
    assert choice.cost == pytest.approx(brute)
    # the returned threshold really achieves it, and the confusion matrix is the one at it
    assert cost_at(y, p, choice.threshold, fn_c, fp_c) == pytest.approx(brute)
    assert confusion_at(y, p, choice.threshold) == choice.confusion
    grid = np.linspace(0, 1, 21)
    assert np.allclose(cost_curve(y, p, grid, fn_c, fp_c), [cost_at(y, p, t, fn_c, fp_c) for t in grid])


@settings(max_examples=150, deadline=None)
@given(labels_scores)
def test_auc_equals_pair_counting(data: tuple[list[int], list[float]]) -> None:
    y, p = np.array(data[0]), np.array(data[1])
    pos, neg = p[y == 1], p[y == 0]
    if pos.size == 0 or neg.size == 0:
        with pytest.raises(ValueError, match="both classes"):
            roc_auc(y, p)
        return
    wins = sum((a > b) + 0.5 * (a == b) for a, b in itertools.product(pos, neg))
    assert roc_auc(y, p) == pytest.approx(wins / (pos.size * neg.size))


def test_roc_curve_and_brier() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    fpr, tpr, _ = roc_curve(y, p)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert roc_auc(y, p) == pytest.approx(0.75)
    assert brier(y, p) == pytest.approx(np.mean((p - y) ** 2))
