"""Attribution benchmark: exact TreeSHAP (compiled) vs LightGBM's ``pred_contrib`` vs path attribution.

    uv run python -m bench.bench_attribution [--model DIR] [--repeats 15] [--quick]

Model: ``--model DIR``, else the 500-tree model bench_stream trains once on var/features (the real
sample's feature build) into var/bench/stream-model. Rows: the sample's application_test rows, scored;
the refused ones (``probability >= threshold``) are the ones reasons are computed for.

* Per-row time, single thread, in one run, repeats interleaved (each repeat times every method on the
  same rows, in rotating order), medians: LightGBM ``pred_contrib`` (``num_threads=1``), the compiled
  TreeSHAP (:mod:`scoring.treeshap`), and the path attribution decide used before
  (``PathExplainer.top_from_leaves``, the leaves given, as the forest produced them while scoring) — for
  batches of 1 row and of 256 rows.
* ``decide`` on 500-row batches (CPU µs per decision): no reasons, path reasons, exact reasons, exact
  reasons + counter-offers.
* Exactness and reasons on every refusal of the sample: max |TreeSHAP − pred_contrib|, and on what share
  of refusals the top-4 feature set (and the first feature) is pred_contrib's — exact vs path.

Writes bench/results/attribution.json. Goal: ≥ 5× faster per row than ``pred_contrib``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from credit_scorer.settings import PROJECT_ROOT
from scoring.prepared import PreparedModel
from scoring.reasons import top_reasons

RESULTS = Path(__file__).resolve().parent / "results" / "attribution.json"
BENCH_MODEL = PROJECT_ROOT / "var" / "bench" / "stream-model"
FEATURES = PROJECT_ROOT / "var" / "features"


def bench_model_dir(explicit: Path | None) -> Path:
    from scoring.model import resolve_model_dir

    if explicit is not None:
        return resolve_model_dir(PROJECT_ROOT, explicit)
    if BENCH_MODEL.is_dir() and any(BENCH_MODEL.iterdir()):
        return resolve_model_dir(BENCH_MODEL)
    from training.train import TrainConfig, train_model

    print("training a 500-tree model on var/features (once, as bench_stream) …", flush=True)
    cfg = TrainConfig(folds=2, max_rounds=500, early_stopping=0, plots=False, params={"learning_rate": 0.05})
    return train_model(FEATURES, BENCH_MODEL, cfg).model_dir


def test_rows(model: PreparedModel) -> np.ndarray:
    import polars as pl

    from feature_cache.loader import read_feature_table

    _, matrix = read_feature_table(FEATURES / "features.parquet", model.schema)
    is_train = pl.read_parquet(FEATURES / "features.parquet", columns=["IS_TRAIN"])["IS_TRAIN"].to_numpy()
    return matrix[~is_train] if (~is_train).any() else matrix


def methods(model: PreparedModel, x: np.ndarray) -> dict[str, Callable[[], object]]:
    assert model.shap is not None and model.forest is not None
    shap, booster, explainer = model.shap, model.booster, model.explainer
    _, leaves = model.forest.score(x)
    rows = np.arange(len(x))
    refused = np.ones(len(x), dtype=bool)
    return {
        "pred_contrib": lambda: booster.predict(x, pred_contrib=True, num_threads=1),
        "treeshap": lambda: shap.contributions(x),
        "path": lambda: explainer.top_from_leaves(leaves, rows, refused, 4),
    }


def timing(model: PreparedModel, refusals: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    """Median seconds per row of each method over interleaved repeats (rotating order)."""
    rng = np.random.default_rng(batch)
    per_row: dict[str, list[float]] = {}
    for rep in range(repeats):
        x = refusals[rng.choice(len(refusals), batch, replace=False)]
        fns = methods(model, x)
        names = list(fns)
        names = names[rep % len(names) :] + names[: rep % len(names)]
        inner = max(1, 256 // batch)
        for name in names:
            t0 = time.perf_counter()
            for _ in range(inner):
                fns[name]()
            per_row.setdefault(name, []).append((time.perf_counter() - t0) / inner / batch)
    med = {name: statistics.median(v) for name, v in per_row.items()}
    return {
        "median_us_per_row": {k: v * 1e6 for k, v in med.items()},
        "pred_contrib_over_treeshap": med["pred_contrib"] / med["treeshap"],
        "pred_contrib_over_path": med["pred_contrib"] / med["path"],
        "treeshap_over_path": med["treeshap"] / med["path"],
    }


def agreement(model: PreparedModel, refusals: np.ndarray) -> dict[str, Any]:
    """Exactness and top-4 agreement with pred_contrib on every refusal."""
    assert model.shap is not None and model.forest is not None
    reference = np.asarray(model.booster.predict(refusals, pred_contrib=True, num_threads=1))
    exact = model.shap.contributions(refusals)
    _, leaves = model.forest.score(refusals)
    path = model.explainer.contributions_from_leaves(leaves)
    yes = np.ones(len(refusals), dtype=bool)
    ref = top_reasons(reference[:, :-1], yes, 4)
    out: dict[str, Any] = {
        "refusals": len(refusals),
        "max_abs_diff_treeshap_vs_pred_contrib": float(np.abs(exact - reference).max()),
    }
    for name, contrib in (("treeshap", exact[:, :-1]), ("path", path)):
        picks = top_reasons(contrib, yes, 4)
        same_set = sum({j for j, _ in a} == {j for j, _ in b} for a, b in zip(picks, ref, strict=True))
        same_first = sum(
            [j for j, _ in a[:1]] == [j for j, _ in b[:1]] for a, b in zip(picks, ref, strict=True)
        )
        out[f"top4_set_identical_pct_{name}"] = 100.0 * same_set / len(refusals)
        out[f"first_reason_identical_pct_{name}"] = 100.0 * same_first / len(refusals)
    return out


def decide_costs(model: PreparedModel, rows: np.ndarray, repeats: int) -> dict[str, Any]:
    """CPU µs per decision of ``decide`` on 500-row batches of the sample (as the worker's): no reasons,
    path reasons, exact reasons, exact reasons + counter-offers — interleaved repeats, medians."""
    from scoring.decide import DecideOptions, ScoringInput, decide
    from scoring.features import CachedFeatures

    x = rows[:500]
    inputs = [ScoringInput(i, {}) for i in range(len(x))]
    cached = CachedFeatures(x, np.ones(len(x), bool), model.feature_version, None)
    cases = {
        "no_reasons": DecideOptions("none", counter_offers=False),
        "path_reasons": DecideOptions(attribution="path", counter_offers=False),
        "exact_reasons": DecideOptions(counter_offers=False),
        "exact_reasons_and_counter_offers": DecideOptions(counter_offers=True),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for rep in range(repeats):
        names = list(cases)[rep % len(cases) :] + list(cases)[: rep % len(cases)]
        for name in names:
            c0 = time.process_time()
            decide(model, inputs, cached, options=cases[name])
            times[name].append((time.process_time() - c0) / len(x))
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    results = decide(model, inputs, cached, options=cases["exact_reasons_and_counter_offers"]).results
    return {
        "batch": len(x),
        "median_cpu_us_per_decision": med,
        "refusal_share": sum(r.decision == "REFUS" for r in results) / len(x),
        "refusals_with_counter_offer": sum(r.counter_offer is not None for r in results)
        / max(1, sum(r.decision == "REFUS" for r in results)),
        "exact_over_path": med["exact_reasons"] / med["path_reasons"],
        "counter_offers_over_exact": med["exact_reasons_and_counter_offers"] / med["exact_reasons"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_attribution", description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 500 refusals for agreement")
    args = parser.parse_args(argv)
    from scoring.model import load_model

    model_dir = bench_model_dir(args.model)
    t0 = time.perf_counter()
    model = PreparedModel(load_model(model_dir))
    prepare_s = time.perf_counter() - t0
    if model.shap is None or model.forest is None:
        raise SystemExit(f"no compiled TreeSHAP / forest: {model.shap_fallback or model.forest_fallback}")
    rows = test_rows(model)
    refusals = rows[np.asarray(model.booster.predict(rows, num_threads=1)) >= model.threshold]
    repeats = 3 if args.quick else args.repeats
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": __import__("os").getloadavg()[0],
        },
        "model": {
            "dir": str(model_dir.relative_to(PROJECT_ROOT))
            if model_dir.is_relative_to(PROJECT_ROOT)
            else str(model_dir),
            "trees": model.booster.num_trees(),
            "features": len(model.schema),
            "tabled_trees": model.shap.tabled_trees,
            "prepare_s_incl_verification": prepare_s,
        },
        "threads": 1,
        "repeats": repeats,
        "batch_1": timing(model, refusals, 1, repeats),
        "batch_256": timing(model, refusals, 256, repeats),
        "agreement_on_sample_refusals": agreement(model, refusals[:500] if args.quick else refusals),
        "decide_500_rows": decide_costs(model, rows, max(repeats, 5)),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("batch_1", "batch_256"):
        us = result[key]["median_us_per_row"]
        ratio = result[key]["pred_contrib_over_treeshap"]
        print(f"{key}: pred_contrib {us['pred_contrib']:.1f} µs/row, treeshap {us['treeshap']:.1f}, "
              f"path {us['path']:.1f} → pred_contrib/treeshap ×{ratio:.1f}")  # fmt: skip
    print(json.dumps(result["agreement_on_sample_refusals"], indent=2))
    print(json.dumps(result["decide_500_rows"], indent=2))
    print(f"→ {RESULTS}")


if __name__ == "__main__":
    main()
