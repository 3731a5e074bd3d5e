"""Observe many values into a Prometheus histogram at once (one call per batch, not per event).

prometheus_client has no bulk ``observe``; a Python call per event costs ~1–2 µs × several stages,
noticeable at 20k events/s. This folds a numpy array into the histogram's buckets with one
``searchsorted``; it falls back to per-value ``observe`` if the client's internals ever change.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """Equivalent to ``for v in values: histogram.observe(v)`` (same bucket rule: v <= upper bound)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in values.tolist():
            histogram.observe(v)
        return
    idx = np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left")
    counts = np.bincount(idx, minlength=len(bounds))
    for i, c in enumerate(counts.tolist()[: len(bounds)]):
        if c:
            buckets[i].inc(c)
    total.inc(float(values.sum()))
