"""Benchmark of the training on the real sample: time, held-out quality, and the raw-columns baseline.

    uv run python -m bench.bench_training [--features var/features] [--raw DIR] [--seeds 3]

For each seed (the held-out split, the CV folds and LightGBM all follow it): the full training pipeline
(`training.train.train_model`: 5-fold CV with early stopping, threshold on out-of-fold scores, final
fit, card, save + verify; no plots, no MLflow) on the feature build, and the reference baseline — a
default LightGBM on the raw application_train columns (`training.baseline`) — on *the same* held-out
clients (checked). Side by side: held-out AUC, business cost 10·FN + 1·FP at the chosen threshold and at
the best possible one, training wall and CPU time. Medians over the seeds; writes
bench/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from credit_scorer.settings import DEFAULT_SAMPLE_DIR, PROJECT_ROOT

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"


def run(features: Path, raw: Path, seeds: list[int]) -> dict[str, Any]:
    from training.baseline import fit_baseline, load_applications
    from training.dataset import load_labelled
    from training.split import stratified_holdout
    from training.train import TrainConfig, train_model

    table = load_labelled(features)
    apps = load_applications(raw)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        for seed in seeds:
            same = set(table.ids[stratified_holdout(table.ids, table.y, 0.2, seed)]) == set(
                apps.ids[stratified_holdout(apps.ids, apps.y, 0.2, seed)]
            )
            if not same:
                raise SystemExit("feature table and application_train disagree on the labelled clients")
            wall, cpu = time.perf_counter(), time.process_time()
            result = train_model(features, Path(tmp) / str(seed), TrainConfig(seed=seed, plots=False))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            base_wall = time.perf_counter()
            base = fit_baseline(apps, seed=seed)
            base_wall = time.perf_counter() - base_wall
            m = result.card.metrics
            row = {
                "seed": seed,
                "auc": m["auc"],
                "cv_auc": m["cv_auc_mean"],
                "cost_at_threshold": m["cost_at_threshold"],
                "best_cost": m["best_cost"],
                "cost_at_0_5": m["cost_at_0_5"],
                "threshold": result.card.threshold,
                "brier": m["brier"],
                "trees": int(m["n_estimators"]),
                "train_wall_s": wall,
                "train_cpu_s": cpu,
                "baseline_auc": base.auc,
                "baseline_best_cost": base.best_cost,
                "baseline_cost_at_0_5": base.cost_at_0_5,
                "baseline_wall_s": base_wall,
            }
            rows.append(row)
            print(
                f"seed {seed}: AUC {row['auc']:.4f} (baseline {row['baseline_auc']:.4f}) · cost "
                f"{row['cost_at_threshold']:.0f} at threshold, {row['best_cost']:.0f} best "
                f"(baseline best {row['baseline_best_cost']:.0f}) · {row['trees']} trees · "
                f"{wall:.1f} s wall, {cpu:.1f} s CPU",
                flush=True,
            )
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "seed"}
    return {
        "features": str(features),
        "feature_count": len(table.schema),
        "labelled_rows": int(table.y.size),
        "holdout_rows": int(round(0.2 * (table.y == 0).sum()) + round(0.2 * table.y.sum())),
        "seeds": rows,
        "median": med,
        "ratios": {
            "auc_model_over_baseline": med["auc"] / med["baseline_auc"],
            "best_cost_model_over_baseline": med["best_cost"] / med["baseline_best_cost"],
            "cost_at_threshold_over_best": med["cost_at_threshold"] / med["best_cost"],
            "cost_at_threshold_over_cost_at_0_5": med["cost_at_threshold"] / med["cost_at_0_5"],
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load1": os.getloadavg()[0]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=PROJECT_ROOT / "var" / "features")
    parser.add_argument("--raw", type=Path, default=DEFAULT_SAMPLE_DIR)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if not (args.features / "features.parquet").is_file():
        raise SystemExit(
            f"{args.features}/features.parquet not found: run `uv run credit-scorer features build` first"
        )
    report = run(args.features, args.raw, list(range(args.seeds)))
    med, ratios = report["median"], report["ratios"]
    print()
    print(
        f"medians over {args.seeds} seeds ({report['labelled_rows']:,} labelled, "
        f"{report['holdout_rows']:,} held out):"
    )
    print(
        f"  held-out AUC       model {med['auc']:.4f}  baseline {med['baseline_auc']:.4f}  "
        f"ratio {ratios['auc_model_over_baseline']:.3f}"
    )
    print(
        f"  best possible cost model {med['best_cost']:.0f}  baseline {med['baseline_best_cost']:.0f}  "
        f"ratio {ratios['best_cost_model_over_baseline']:.3f}"
    )
    print(
        f"  cost at threshold  {med['cost_at_threshold']:.0f} = "
        f"{ratios['cost_at_threshold_over_best']:.3f} × best, "
        f"{ratios['cost_at_threshold_over_cost_at_0_5']:.3f} × cost at 0.5 ({med['cost_at_0_5']:.0f})"
    )
    print(
        f"  training           {med['train_wall_s']:.1f} s wall, {med['train_cpu_s']:.1f} s CPU "
        f"(load avg {report['machine']['load1']:.1f} on {report['machine']['cpus']} CPUs)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=lambda o: float(np.asarray(o))))
    print(f"→ {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
