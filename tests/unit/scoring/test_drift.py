"""Unit tests of the pure drift core: binning convention, decay window, PSI values and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.drift import (
    PSI_EPSILON,
    SCORE,
    DriftMonitor,
    ReferenceBins,
    StreamingHistogram,
    bin_counts,
    psi,
    psi_band,
)
from scoring.exceptions import DriftReferenceError


def _reference(**features: dict) -> dict:
    return {"score": {"edges": [0.5], "proportions": [0.5, 0.5], "missing": 0.0}, "features": features}


# --- binning ------------------------------------------------------------------------------------
def test_bins_are_right_closed_and_nan_goes_to_the_missing_bin() -> None:
    edges = np.array([0.0, 1.0])
    counts = bin_counts(edges, [-5.0, 0.0, 1e-9, 1.0, 1.0000001, np.inf, np.nan, np.nan])
    # (-inf, 0] ← -5, 0 ; (0, 1] ← 1e-9, 1 ; (1, inf) ← 1.0000001, inf ; missing ← 2 NaN
    assert counts.tolist() == [2.0, 2.0, 2.0, 2.0]


def test_bins_accept_float32_values_exactly_on_an_edge() -> None:
    edge = float(np.float32(0.1))  # an edge computed from float32 training values
    counts = bin_counts(np.array([edge]), np.array([0.1, 0.1000001], dtype=np.float32))
    assert counts.tolist() == [1.0, 1.0, 0.0]


# --- PSI values --------------------------------------------------------------------------------
def test_identical_distributions_give_zero_psi() -> None:
    shares = [0.1, 0.2, 0.3, 0.4, 0.0]
    assert psi(shares, shares) == pytest.approx(0.0, abs=1e-12)


def test_known_shift_gives_the_hand_computed_psi() -> None:
    # (0.8-0.5)·ln(0.8/0.5) + (0.2-0.5)·ln(0.2/0.5) = 0.3·ln 1.6 + 0.3·ln 2.5
    expected = 0.3 * math.log(1.6) + 0.3 * math.log(2.5)
    assert psi([0.8, 0.2], [0.5, 0.5]) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.415888, abs=1e-6)


def test_empty_bin_is_floored_at_epsilon() -> None:
    value = psi([1.0, 0.0], [0.5, 0.5])
    hand = (1.0 - 0.5) * math.log(1.0 / 0.5) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert value == pytest.approx(hand, rel=1e-12)
    assert math.isfinite(value)


def test_monitor_psi_of_a_known_shift_matches_the_hand_value() -> None:
    monitor = DriftMonitor.from_reference(_reference(), half_life_events=1e9, min_events=0)
    monitor.observe(SCORE, [0.1] * 80 + [0.9] * 20)
    assert monitor.psi()[SCORE] == pytest.approx(0.3 * math.log(1.6) + 0.3 * math.log(2.5), rel=1e-6)


def test_missing_share_is_an_extra_bin() -> None:
    ref = _reference(AMT={"edges": [0.0], "proportions": [0.5, 0.5], "missing": 0.2})
    monitor = DriftMonitor.from_reference(ref, half_life_events=1e9, min_events=0)
    # the expected shares are 0.4 / 0.4 / 0.2 (missing): a matching stream has PSI 0
    monitor.observe("AMT", [-1.0] * 40 + [1.0] * 40 + [np.nan] * 20)
    assert monitor.psi()["AMT"] == pytest.approx(0.0, abs=1e-12)
    # all values missing: actual = (0, 0, 1) against (0.4, 0.4, 0.2)
    only_missing = DriftMonitor.from_reference(ref, half_life_events=1e9, min_events=0)
    only_missing.observe("AMT", [np.nan] * 50)
    assert only_missing.psi()["AMT"] == pytest.approx(psi([0, 0, 1], [0.4, 0.4, 0.2]), rel=1e-12)


def test_sample_of_the_reference_population_stays_stable_and_a_shift_is_significant() -> None:
    rng = np.random.default_rng(7)
    train = rng.normal(size=50_000)
    edges = np.quantile(train, np.linspace(0.1, 0.9, 9))
    props = np.diff(np.concatenate([[0.0], np.linspace(0.1, 0.9, 9), [1.0]]))
    ref = _reference(X={"edges": edges.tolist(), "proportions": props.tolist(), "missing": 0.0})
    same = DriftMonitor.from_reference(ref, min_events=100)
    same.observe("X", rng.normal(size=5000))
    shifted = DriftMonitor.from_reference(ref, min_events=100)
    shifted.observe("X", rng.normal(loc=1.0, size=5000))
    assert same.psi()["X"] < 0.02
    assert shifted.psi()["X"] > 0.25
    assert psi_band(same.psi()["X"]) == "stable"
    assert psi_band(shifted.psi()["X"]) == "significant"
    assert psi_band(0.15) == "moderate"


# --- window ---------------------------------------------------------------------------------------
def test_decay_halves_old_weight_every_half_life_whatever_the_batch_sizes() -> None:
    ref = ReferenceBins.from_dict("x", {"edges": [0.0], "proportions": [0.5, 0.5]})
    one = StreamingHistogram(ref, half_life_events=100)
    many = StreamingHistogram(ref, half_life_events=100)
    for h in (one, many):
        h.observe([-1.0] * 1000)
    one.observe([1.0] * 300)
    for _ in range(3):
        many.observe([1.0] * 100)
    assert one.counts[0] == pytest.approx(1000 * 0.5**3)
    assert many.counts[0] == pytest.approx(1000 * 0.5**3)
    # a stream that moved entirely to the other bin ends up dominating the window
    one.observe([1.0] * 2000)
    assert one.shares()[1] > 0.99


def test_psi_is_withheld_until_min_events() -> None:
    monitor = DriftMonitor.from_reference(_reference(), min_events=50)
    monitor.observe(SCORE, [0.1] * 49)
    assert monitor.psi() == {}
    monitor.observe(SCORE, [0.9])
    assert set(monitor.psi()) == {SCORE}


def test_empty_batch_changes_nothing() -> None:
    monitor = DriftMonitor.from_reference(_reference(), min_events=0)
    assert monitor.observe(SCORE, []) == 0
    assert monitor.psi() == {}


def test_unknown_name_is_a_clear_error() -> None:
    monitor = DriftMonitor.from_reference(_reference())
    with pytest.raises(KeyError, match="no drift reference for 'NOPE'"):
        monitor.observe("NOPE", [1.0])


# --- reference validation ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"edges": [0.0]}, "missing field 'proportions'"),
        ({"edges": [1.0, 0.0], "proportions": [0.3, 0.3, 0.4]}, "'edges' must be strictly increasing"),
        ({"edges": [0.0], "proportions": [1.0]}, "expected len\\(edges\\) \\+ 1 = 2"),
        ({"edges": [0.0], "proportions": [0.7, 0.7]}, "sums to 1.4"),
        ({"edges": [0.0], "proportions": [-0.5, 1.5]}, "must be finite and >= 0"),
        ({"edges": [0.0], "proportions": [0.5, 0.5], "missing": 2}, "'missing' must be in \\[0, 1\\]"),
        ({"edges": ["a"], "proportions": [0.5, 0.5]}, "non-numeric"),
        ({"edges": [float("nan")], "proportions": [0.5, 0.5]}, "'edges' must be finite"),
    ],
)
def test_malformed_reference_names_the_histogram_and_field(doc: dict, message: str) -> None:
    with pytest.raises(DriftReferenceError, match=f"'AMT_CREDIT'.*{message}"):
        DriftMonitor.from_reference(_reference(AMT_CREDIT=doc))


def test_reference_without_score_is_rejected() -> None:
    with pytest.raises(DriftReferenceError, match="missing field 'score'"):
        DriftMonitor.from_reference({"features": {}})


def test_all_missing_reference_expects_everything_in_the_missing_bin() -> None:
    ref = ReferenceBins.from_dict("x", {"edges": [0.0], "proportions": [0.0, 0.0], "missing": 1.0})
    assert ref.expected.tolist() == [0.0, 0.0, 1.0]


# --- invariants ----------------------------------------------------------------------------------
_weights = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12)


def _normalise(w: list[float]) -> np.ndarray:
    a = np.asarray(w, dtype=np.float64)
    return a / a.sum() if a.sum() > 0 else np.full(len(a), 1.0 / len(a))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_psi_is_non_negative_symmetric_and_zero_on_itself(data: st.DataObject) -> None:
    a = _normalise(data.draw(_weights))
    e = _normalise(data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(a), max_size=len(a))))
    assert psi(a, e) >= 0.0
    assert psi(a, e) == pytest.approx(psi(e, a), rel=1e-9, abs=1e-12)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=6, unique=True),
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True)), max_size=200),
)
def test_every_value_lands_in_exactly_one_bin(edges: list[float], values: list[float]) -> None:
    e = np.sort(np.asarray(edges))
    counts = bin_counts(e, values)
    assert counts.sum() == len(values)
    for v in values:
        if math.isnan(v):
            continue
        i = int(np.searchsorted(e, v, side="left"))
        assert (i == 0 or e[i - 1] < v) and (i == len(e) or v <= e[i])


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 60), st.integers(0, 2**32 - 1))
def test_observe_columns_equals_folding_each_histogram_separately(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = _reference(
        A={"edges": [-1.0, 0.0, 1.0], "proportions": [0.25] * 4, "missing": 0.1},
        B={"edges": [], "proportions": [0.0], "missing": 1.0},
        C={"edges": [5.0], "proportions": [0.5, 0.5]},
    )
    rows = rng.normal(size=(n, 4)) * 3
    rows[rng.random((n, 4)) < 0.2] = np.nan
    rows[: n // 4, 1] = 0.0  # values exactly on an edge
    joint = DriftMonitor.from_reference(ref, half_life_events=40, min_events=0)
    split = DriftMonitor.from_reference(ref, half_life_events=40, min_events=0)
    for start in range(0, n, 7):  # several batches, so the decay is exercised too
        joint.observe_columns(rows[start : start + 7].T)
        for j, name in enumerate(split.names):
            split.observe(name, rows[start : start + 7, j])
    for name in joint.names:
        np.testing.assert_allclose(joint.histograms[name].counts, split.histograms[name].counts, rtol=1e-12)
        assert joint.histograms[name].seen == split.histograms[name].seen == n
    assert joint.psi() == pytest.approx(split.psi())


def test_observe_columns_rejects_a_wrong_shape() -> None:
    monitor = DriftMonitor.from_reference(_reference())
    with pytest.raises(ValueError, match=r"expected a \(1, n\) array"):
        monitor.observe_columns(np.zeros((2, 3)))


def test_monitor_without_histograms_is_rejected() -> None:
    with pytest.raises(DriftReferenceError, match="at least one reference histogram"):
        DriftMonitor([])
