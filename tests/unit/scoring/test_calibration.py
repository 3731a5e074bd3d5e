"""scoring.calibration: the served probability from the model card's calibration."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from scoring.calibration import Calibrator, calibrator_for
from scoring.model_card import Calibration

RAW = np.array([0.0, 0.05, 0.2, 0.5, 0.9, 1.0])


def test_identity_serves_the_raw_probability_unchanged() -> None:
    cal = Calibrator()
    assert cal.identity and cal.apply(RAW).tobytes() == RAW.tobytes()


def test_isotonic_is_piecewise_linear_through_its_knots_and_flat_outside() -> None:
    cal = Calibrator(Calibration(method="isotonic", x=[0.1, 0.5], y=[0.02, 0.3]))
    got = cal.apply(np.array([0.0, 0.1, 0.3, 0.5, 0.8]))
    assert got.tolist() == pytest.approx([0.02, 0.02, 0.16, 0.3, 0.3])


def test_platt_is_a_sigmoid_of_the_logit() -> None:
    cal = Calibrator(Calibration(method="platt", a=0.7, b=-1.2))
    p = RAW[1:-1]
    expected = 1 / (1 + np.exp(-(0.7 * np.log(p / (1 - p)) - 1.2)))
    np.testing.assert_allclose(cal.apply(p), expected, rtol=1e-12)
    ends = cal.apply(np.array([0.0, 1.0]))  # no logit at 0 and 1: clipped, still finite and ordered
    assert np.isfinite(ends).all() and 0 < ends[0] < ends[1] < 1


@pytest.mark.parametrize(
    "bad",
    [
        {"method": "isotonic", "x": [0.1, 0.1], "y": [0.0, 0.1]},
        {"method": "isotonic", "x": [0.1, 0.2], "y": [0.3, 0.1]},
        {"method": "isotonic", "x": [0.1], "y": [0.0, 0.1]},
        {"method": "isotonic", "x": [0.1, 2.0], "y": [0.0, 0.1]},
        {"method": "platt", "a": 0.0},
        {"method": "identity", "x": [0.5], "y": [0.5]},
        {"method": "beta"},
    ],
)
def test_invalid_calibrations_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Calibration.model_validate(bad)


def test_calibrator_for_reads_the_card_else_the_model_else_identity() -> None:
    class Card:
        calibration = Calibration(method="platt", a=2.0, b=0.0)

    class Loaded:
        card = Card()

    class Bare:
        calibration = Calibration(method="isotonic", x=[0.0, 1.0], y=[0.1, 0.2])

    assert calibrator_for(Loaded()).method == "platt"
    assert calibrator_for(Bare()).method == "isotonic"
    assert calibrator_for(object()).identity
