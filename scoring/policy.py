"""Decision policy: REFUS when the probability of default is at or above the model's threshold."""

from __future__ import annotations

import numpy as np

ACCORD = "ACCORD"
REFUS = "REFUS"


def refused_mask(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the refused rows (``probability >= threshold``; NaN is never produced by LightGBM)."""
    return np.asarray(probabilities) >= threshold


def decide(probability: float, threshold: float) -> str:
    """The decision for one probability (same rule as :func:`refused_mask`)."""
    return REFUS if probability >= threshold else ACCORD
