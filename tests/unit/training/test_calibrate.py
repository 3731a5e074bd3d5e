"""training.calibrate: isotonic and Platt fits on out-of-fold scores, calibration metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.calibration import Calibrator
from training.calibrate import (
    calibration_metrics,
    expected_calibration_error,
    fit_calibration,
    isotonic_knots,
    platt_parameters,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=60))
def test_isotonic_fit_is_monotone_and_keeps_the_default_rate(pairs: list[tuple[float, bool]]) -> None:
    p = np.array([a for a, _ in pairs])
    y = np.array([float(b) for _, b in pairs])
    x, v = isotonic_knots(y, p)
    assert np.all(np.diff(x) > 0) and np.all(np.diff(v) >= 0)
    fitted = np.interp(p, x, v)
    # pooled means: the fit preserves the total number of defaults (a property of isotonic regression)
    assert fitted.sum() == pytest.approx(y.sum(), abs=1e-9)


def test_isotonic_fit_pools_violators() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    x, v = isotonic_knots(y, p)
    # 0.2 (1) and 0.3 (0) violate the order: pooled to 0.5 over [0.2, 0.3]
    assert x.tolist() == [0.1, 0.2, 0.3, 0.4] and v.tolist() == [0.0, 0.5, 0.5, 1.0]


def test_platt_recovers_the_parameters_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, 40_000)
    z = np.log(p / (1 - p))
    y = (rng.random(p.size) < 1 / (1 + np.exp(-(0.5 * z - 1.5)))).astype(float)
    a, b = platt_parameters(y, p)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.5, abs=0.05)


def test_a_fitted_calibration_repairs_shifted_scores() -> None:
    rng = np.random.default_rng(1)
    true = rng.beta(1, 10, 20_000)  # ~9 % defaults
    y = (rng.random(true.size) < true).astype(np.int8)
    shifted = true**0.4  # ranked the same, far too high (as scale_pos_weight does)
    for method in ("isotonic", "platt"):
        cal = fit_calibration(method, y, shifted, "test")
        served = Calibrator(cal).apply(shifted)
        assert expected_calibration_error(y, served) < 0.01 < expected_calibration_error(y, shifted)
    assert fit_calibration("identity", y, shifted, "t").method == "identity"
    with pytest.raises(ValueError, match="identity, isotonic or platt"):
        fit_calibration("beta", y, shifted, "t")  # type: ignore[arg-type]


def test_calibration_metrics() -> None:
    y = np.tile([0, 0, 0, 1], 100)  # every equal-count bin of 40 rows holds 10 defaults
    m = calibration_metrics(y, np.full(400, 0.25), base_rate=0.25)
    assert m["brier"] == m["brier_base_rate"] == pytest.approx(0.1875)
    assert m["ece"] == pytest.approx(0.0) and m["mean_probability"] == 0.25 and m["default_rate"] == 0.25
    assert m["log_loss"] == pytest.approx(-(3 * np.log(0.75) + np.log(0.25)) / 4)
    assert calibration_metrics(y, np.full(400, 0.9), 0.25)["ece"] == pytest.approx(0.65)
