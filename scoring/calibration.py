"""The served probability of default: the booster's probability through the model card's calibration.

Applied by :func:`scoring.decide.decide` right after the compiled forest (or LightGBM), so the forest
stays bit-identical to ``booster.predict`` and every adapter (worker, API, replay, drift) serves the
same calibrated probability. The calibration is data of the model card
(:class:`scoring.model_card.Calibration`), so a model trained either way is served right; a model
without a card (:class:`scoring.model.BoosterModel` without a calibration) is served as it is.
Pure: numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.model_card import Calibration

_EPS = 1e-15  # probabilities 0 and 1 have no logit; LightGBM's never reach them anyway


class Calibrator:
    """One calibration, its parameters as arrays once (the hot path calls :meth:`apply` per batch)."""

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.calibration = calibration or Calibration()
        self.method = self.calibration.method
        self._x = np.asarray(self.calibration.x, dtype=np.float64)
        self._y = np.asarray(self.calibration.y, dtype=np.float64)

    @property
    def identity(self) -> bool:
        return self.method == "identity"

    def apply(self, raw: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Calibrated probabilities of default of the booster's probabilities ``raw`` (same shape)."""
        p = np.asarray(raw, dtype=np.float64)
        if self.method == "identity":
            return p
        if self.method == "isotonic":
            return np.interp(p, self._x, self._y)
        z = np.log(np.clip(p, _EPS, 1.0 - _EPS))
        z -= np.log1p(-np.clip(p, _EPS, 1.0 - _EPS))
        out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-(self.calibration.a * z + self.calibration.b)))
        return out

    def __repr__(self) -> str:
        return f"Calibrator({self.method})"


def calibrator_for(model: Any) -> Calibrator:
    """The calibrator of a model: its card's calibration, else its own ``calibration`` attribute
    (a :class:`scoring.model.BoosterModel`), else identity."""
    card = getattr(model, "card", None)
    calibration = card.calibration if card is not None else getattr(model, "calibration", None)
    return Calibrator(calibration)
