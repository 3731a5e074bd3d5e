"""Reference distributions for drift monitoring (shape documented in :mod:`scoring.model_card`).

Edges are the sorted distinct deciles of the non-missing training values (taken among the observed
values, so float32 values compare the same offline and online); the bins are right-closed,
``np.searchsorted(edges, x, side="left")``, the convention :mod:`scoring.drift` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

DECILES = np.linspace(0.1, 0.9, 9)


def histogram(values: npt.ArrayLike, quantiles: npt.ArrayLike = DECILES) -> dict[str, Any]:
    """``{"edges", "proportions", "missing"}`` of one variable."""
    v = np.asarray(values, dtype=np.float64).ravel()
    nan = np.isnan(v)
    missing = float(nan.mean()) if v.size else 0.0
    present = v[~nan]
    if present.size == 0:
        return {"edges": [], "proportions": [0.0], "missing": 1.0 if v.size else 0.0}
    ordered = np.sort(present)
    # inverted-CDF quantile (an observed value), robust to 0.3 · 100 = 30.000000000000004
    ranks = np.ceil(np.asarray(quantiles) * ordered.size - 1e-9).astype(np.int64) - 1
    edges = np.unique(ordered[np.clip(ranks, 0, ordered.size - 1)])
    # a top edge equal to the maximum leaves an always-empty last bin: drop it
    edges = edges[edges < ordered[-1]]
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    proportions = counts / present.size
    return {
        "edges": [float(e) for e in edges],
        "proportions": [float(p) for p in proportions],
        "missing": missing,
    }


def build_reference(
    scores: npt.ArrayLike,
    x_train: npt.NDArray[np.float32],
    feature_names: Sequence[str],
    top_features: Sequence[str],
) -> dict[str, Any]:
    """Reference of the held-out scores and of ``top_features`` (columns of the training matrix)."""
    index = {n: i for i, n in enumerate(feature_names)}
    return {
        "score": histogram(scores),
        "features": {name: histogram(x_train[:, index[name]]) for name in top_features},
    }


def top_by_gain(gains: npt.ArrayLike, feature_names: Sequence[str], k: int = 10) -> list[str]:
    """The ``k`` features with the largest total gain (only features actually used)."""
    g = np.asarray(gains, dtype=np.float64)
    order = np.argsort(-g, kind="stable")
    return [feature_names[i] for i in order[:k] if g[i] > 0]
