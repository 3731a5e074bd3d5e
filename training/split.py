"""Deterministic stratified splits (pure numpy): the honest held-out split and the CV folds.

Both are keyed on the client ids, not on row order: rows are put in SK_ID_CURR order before shuffling,
so the same ids, labels and seed give the same split whatever table they come from (the feature table
and the raw-columns baseline share their held-out clients).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def stratified_holdout(
    ids: npt.ArrayLike, y: npt.ArrayLike, fraction: float, seed: int
) -> npt.NDArray[np.bool_]:
    """Boolean mask of the held-out rows: ``round(fraction · n_class)`` rows of each class."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"held-out fraction must be in (0, 1), got {fraction}")
    ids_a = np.asarray(ids).ravel()
    yy = np.asarray(y).astype(np.int64).ravel()
    if ids_a.shape != yy.shape:
        raise ValueError("ids and labels differ in length")
    order = np.argsort(ids_a, kind="stable")
    rng = np.random.default_rng(seed)
    mask = np.zeros(yy.size, dtype=bool)
    for cls in np.unique(yy):
        members = order[yy[order] == cls]
        picked = rng.permutation(members)[: round(fraction * members.size)]
        mask[picked] = True
    return mask


def stratified_folds(ids: npt.ArrayLike, y: npt.ArrayLike, k: int, seed: int) -> npt.NDArray[np.int64]:
    """Fold number (0..k-1) of every row, classes spread evenly over the folds."""
    yy = np.asarray(y).astype(np.int64).ravel()
    ids_a = np.asarray(ids).ravel()
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    counts = np.bincount(yy)
    if counts[counts > 0].min() < k:
        raise ValueError(f"a class has only {counts[counts > 0].min()} rows, fewer than {k} folds")
    order = np.argsort(ids_a, kind="stable")
    rng = np.random.default_rng(seed + 1)
    fold = np.empty(yy.size, dtype=np.int64)
    for cls in np.unique(yy):
        members = rng.permutation(order[yy[order] == cls])
        fold[members] = np.arange(members.size) % k
    return fold
