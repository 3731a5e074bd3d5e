"""Fitting a calibration on out-of-fold scores, and the calibration metrics (pure numpy).

* isotonic: pool-adjacent-violators on the out-of-fold (score, label) pairs, stored as the knots of a
  piecewise-linear non-decreasing map (each pooled block keeps its lowest and highest score);
* Platt: logistic regression of the label on ``logit(score)`` (maximum likelihood, Newton steps);
* identity: nothing to fit.

Metrics: Brier score, log loss, and the expected calibration error over ``bins`` equal-count bins of
the predicted probability (Σ_bins share · |observed rate − mean predicted|). Equal-count rather than
equal-width bins: with a default rate near 8 %, nine tenths of the scores fall in the first tenth of
[0, 1], where equal-width bins would pool them all.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.model_card import Calibration, CalibrationMethod

_EPS = 1e-15


def fit_calibration(method: CalibrationMethod, y: npt.ArrayLike, p: npt.ArrayLike, what: str) -> Calibration:
    """The ``method`` calibration fitted on labels ``y`` and scores ``p`` (``what`` says which rows)."""
    yy = np.asarray(y, dtype=np.float64).ravel()
    pp = np.asarray(p, dtype=np.float64).ravel()
    if method == "identity":
        return Calibration(method="identity", fitted_on=what)
    if method == "isotonic":
        x, v = isotonic_knots(yy, pp)
        return Calibration(method="isotonic", x=x.tolist(), y=v.tolist(), fitted_on=what)
    if method == "platt":
        a, b = platt_parameters(yy, pp)
        return Calibration(method="platt", a=a, b=b, fitted_on=what)
    raise ValueError(f"calibration must be identity, isotonic or platt, got {method!r}")


def isotonic_knots(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x strictly increasing, v non-decreasing) of the isotonic fit of ``y`` on ``p``."""
    xs, inverse = np.unique(p, return_inverse=True)
    weights = np.bincount(inverse).astype(np.float64)
    sums = np.bincount(inverse, weights=y)
    # pool adjacent violators over the distinct scores: blocks as (sum, weight, first, last)
    blocks: list[list[float]] = []
    for i in range(xs.size):
        blocks.append([sums[i], weights[i], float(i), float(i)])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, w, _, last = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += w
            blocks[-1][3] = last
    knots_x: list[float] = []
    knots_v: list[float] = []
    for s, w, first, last in blocks:
        for i in sorted({int(first), int(last)}):
            knots_x.append(float(xs[i]))
            knots_v.append(s / w)
    return np.asarray(knots_x), np.clip(np.asarray(knots_v), 0.0, 1.0)


def platt_parameters(y: np.ndarray, p: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(a, b) maximising the likelihood of ``y`` under ``sigmoid(a · logit(p) + b)``."""
    pc = np.clip(p, _EPS, 1.0 - _EPS)
    z = np.log(pc) - np.log1p(-pc)
    design = np.column_stack([z, np.ones_like(z)])
    theta = np.array([1.0, 0.0])
    for _ in range(iterations):
        q = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (q - y)
        hess = design.T @ (design * (q * (1.0 - q))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    yy = np.asarray(y, dtype=np.float64).ravel()
    pp = np.clip(np.asarray(p, dtype=np.float64).ravel(), _EPS, 1.0 - _EPS)
    return float(-np.mean(yy * np.log(pp) + (1.0 - yy) * np.log1p(-pp)))


def reliability(
    y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(mean predicted, observed rate, rows) of each of ``bins`` equal-count bins of ``p``."""
    yy = np.asarray(y, dtype=np.float64).ravel()
    pp = np.asarray(p, dtype=np.float64).ravel()
    order = np.argsort(pp, kind="stable")
    parts = [part for part in np.array_split(order, min(bins, max(pp.size, 1))) if part.size]
    mean_p = np.array([pp[part].mean() for part in parts])
    observed = np.array([yy[part].mean() for part in parts])
    rows = np.array([part.size for part in parts], dtype=np.int64)
    return mean_p, observed, rows


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> float:
    mean_p, observed, rows = reliability(y, p, bins)
    return float(np.sum(rows * np.abs(observed - mean_p)) / max(rows.sum(), 1))


def calibration_metrics(y: npt.ArrayLike, p: npt.ArrayLike, base_rate: float) -> dict[str, float]:
    """Brier (and the Brier of predicting ``base_rate`` for everyone), log loss, ECE, mean prediction."""
    yy = np.asarray(y, dtype=np.float64).ravel()
    pp = np.asarray(p, dtype=np.float64).ravel()
    return {
        "brier": float(np.mean((pp - yy) ** 2)),
        "brier_base_rate": float(np.mean((base_rate - yy) ** 2)),
        "log_loss": log_loss(yy, pp),
        "ece": expected_calibration_error(yy, pp),
        "mean_probability": float(pp.mean()),
        "default_rate": float(yy.mean()),
    }
