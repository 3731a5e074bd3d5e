"""Benchmark of live drift monitoring: what the drift observer adds to each micro-batch.

    uv run python -m bench.bench_drift [--repeats 200]

Setup like production: a 250-column float32 model matrix (~35 % NaN), a reference of the score and the
10 top features (deciles, :func:`training.reference.histogram`), the real
:class:`stream_app.drift_observer.DriftObserver` on a real :class:`ScorerMetrics`.

Measured per micro-batch of 1, 50 and 500 events (medians over ``--repeats``):

* ``fold``: folding the batch into the 11 histograms (vectorised ``searchsorted`` + ``bincount``),
  side by side with a per-value Python loop over the same bins (``ReferenceHistogram.bin_of``);
* ``publish``: recomputing the 11 PSIs and setting the gauges (done at most once a second);
* ``observer``: the whole call as the worker makes it (fold + throttled publish).

The goal: the observer costs a negligible share of the 15 ms event→decision SLO.
Writes bench/results/drift.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from credit_scorer.metrics import ScorerMetrics
from dashboards.slo import LATENCY_SLO_SECONDS
from scoring.drift import DriftMonitor
from scoring.model_card import ReferenceHistogram
from scoring.results import BatchScore, ScoreResult
from stream_app.drift_observer import DriftObserver
from training.reference import histogram

RESULTS = Path(__file__).resolve().parent / "results" / "drift.json"
N_COLUMNS = 250
TOP = 10
BATCH_SIZES = (1, 50, 500)


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    matrix = rng.lognormal(0.0, 1.0, (n, N_COLUMNS)).astype(np.float32)
    matrix[rng.random((n, N_COLUMNS)) < 0.35] = np.nan
    probs = rng.beta(1.2, 8.0, n)
    return matrix, probs


def make_reference(matrix: np.ndarray, probs: np.ndarray) -> tuple[dict[str, Any], dict[str, int]]:
    names = {f"F{i}": i for i in range(N_COLUMNS)}
    top = [f"F{i}" for i in range(0, N_COLUMNS, N_COLUMNS // TOP)][:TOP]
    ref = {"score": histogram(probs), "features": {n: histogram(matrix[:, names[n]]) for n in top}}
    return ref, names


def median_us(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def batch_of(matrix: np.ndarray, probs: np.ndarray) -> BatchScore:
    results = [ScoreResult(i, float(p), "ACCORD", 0.5, "v", "f", True, None, ()) for i, p in enumerate(probs)]
    return BatchScore(results, 0.0, 0.0, matrix, probs)


def naive_fold(hists: dict[str, ReferenceHistogram], cols: list[tuple[str, int]], batch: BatchScore) -> None:
    """Per-value Python binning over the same bins (the obvious implementation)."""
    counts = {name: [0] * (len(h.edges) + 2) for name, h in hists.items()}
    for p in [r.probability for r in batch.results]:
        counts["score"][hists["score"].bin_of(p) or 0] += 1
    for name, col in cols:
        h, c = hists[name], counts[name]
        for v in batch.matrix[:, col].tolist():
            b = h.bin_of(v)
            c[-1 if b is None else b] += 1


def measure(
    n: int,
    reference: dict[str, Any],
    columns: dict[str, int],
    hists: dict[str, ReferenceHistogram],
    rng: np.random.Generator,
    repeats: int,
) -> dict[str, Any]:
    matrix, probs = make_data(rng, n)
    batch = batch_of(matrix, probs)
    monitor = DriftMonitor.from_reference(reference, min_events=0)
    observer = DriftObserver(monitor, columns, ScorerMetrics(CollectorRegistry()), publish_every_s=1.0)
    cols = [(name, columns[name]) for name in monitor.feature_names]
    fold = median_us(lambda: observer.fold(batch), repeats)
    naive_us = median_us(lambda: naive_fold(hists, cols, batch), max(10, repeats // 10))
    publish = median_us(observer.publish, repeats)
    whole = median_us(lambda: observer(batch), repeats)
    return {
        "batch": n,
        "fold_us": round(fold, 1),
        "naive_loop_us": round(naive_us, 1),
        "naive_over_fold": round(naive_us / fold, 1),
        "publish_us": round(publish, 1),
        "observer_us": round(whole, 1),
        "observer_us_per_event": round(whole / n, 3),
        "observer_share_of_slo_per_batch": round(whole * 1e-6 / LATENCY_SLO_SECONDS, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    train_matrix, train_probs = make_data(rng, 20_000)
    reference, columns = make_reference(train_matrix, train_probs)
    hists = {
        name: ReferenceHistogram.model_validate(h)
        for name, h in [("score", reference["score"]), *reference["features"].items()]
    }

    rows = [measure(n, reference, columns, hists, rng, args.repeats) for n in BATCH_SIZES]

    print(f"drift observer: {TOP} features + score, {N_COLUMNS}-column matrix, medians of {args.repeats}")
    print(
        f"{'batch':>6} {'fold µs':>9} {'naive µs':>10} {'naive/fold':>11} {'publish µs':>11} "
        f"{'observer µs':>12} {'µs/event':>9} {'of 15 ms':>9}"
    )
    for r in rows:
        print(
            f"{r['batch']:>6} {r['fold_us']:>9.1f} {r['naive_loop_us']:>10.1f} "
            f"{r['naive_over_fold']:>10.1f}x "
            f"{r['publish_us']:>11.1f} {r['observer_us']:>12.1f} {r['observer_us_per_event']:>9.3f} "
            f"{r['observer_share_of_slo_per_batch']:>9.2%}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "topic": "drift",
                "machine": {"python": platform.python_version(), "processor": platform.processor()},
                "repeats": args.repeats,
                "features": TOP,
                "columns": N_COLUMNS,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
