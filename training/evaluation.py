"""Held-out evaluation metrics (pure numpy): ROC AUC, ROC curve, Brier score."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from training.threshold import cost_sweep


def roc_auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney U with tie-averaged ranks)."""
    yy = np.asarray(y).astype(bool).ravel()
    pp = np.asarray(p, dtype=np.float64).ravel()
    n_pos = int(yy.sum())
    n_neg = yy.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes among the labels")
    _, inverse, counts = np.unique(pp, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    ranks = avg_rank[inverse]
    u = ranks[yy].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(
    y: npt.ArrayLike, p: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(fpr, tpr, cut) for every distinct cut score, starting at (0, 0)."""
    sweep = cost_sweep(y, p)
    fpr = sweep.fp / max(sweep.negatives, 1)
    tpr = sweep.tp / max(sweep.positives, 1)
    return fpr.astype(np.float64), tpr.astype(np.float64), sweep.cuts


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    yy = np.asarray(y, dtype=np.float64).ravel()
    pp = np.asarray(p, dtype=np.float64).ravel()
    return float(np.mean((pp - yy) ** 2))
