"""Benchmark of the pure decision use case (``scoring.decide.decide``) and the event codec.

    uv run python -m bench.bench_scoring [--trees 500] [--features 250] [--model DIR] [--quick]

Trains a production-size LightGBM model on synthetic data in the Home Credit feature layout (event,
cached and derived fields; ``--model DIR`` uses a saved model directory instead), then measures, side by
side, decisions/s of ``decide`` for batch sizes 1, 100 and 500 with:

* reasons ``none``;
* reasons on every REFUS by the fast path attribution (the default, ``refusals``);
* both again with LightGBM's own routing instead of the compiled forest (:mod:`scoring.forest`;
  ``PreparedModel(model, use_forest=False)``);
* reasons on every REFUS by LightGBM's ``pred_contrib`` (TreeSHAP) — the slow alternative;
* reasons on every row by the fast path (``all``), and ``none`` with OpenMP's default thread count;

plus the codec's per-event costs (parse an application; build + encode a decision) against the
plain-pydantic alternatives, and how often the fast reasons' top feature agrees with TreeSHAP's.
Medians of repeated runs. Goal: the whole worker ≥ 20,000 decisions/s and ≥ 10,000 with reasons on
every REFUS, so the service alone must be well above. Writes bench/results/scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson

from feature_loader.derived import apply_derived
from feature_loader.feature_schema import FeatureField, FeatureKind, FeatureSchema, FeatureSource
from schemas.codec import encode_decision, parse_application
from schemas.events import LoanApplication
from scoring.decide import DecideOptions, ReasonsMode, ScoringInput, decide
from scoring.decision import StageTimings, build_decision, decision_bytes
from scoring.features import CachedFeatures
from scoring.model import BoosterModel
from scoring.prepared import PreparedModel
from scoring.reasons import reasons_by_pred_contrib, top_reasons

RESULTS = Path(__file__).resolve().parent / "results" / "scoring.json"
NO_REASONS = DecideOptions("none")
BATCH_SIZES = (1, 100, 500)
REFUSAL_RATE = 0.2  # threshold at the 80th percentile of the score: ~20 % REFUS
E, C, D = FeatureSource.EVENT, FeatureSource.CACHED, FeatureSource.DERIVED
CAT = FeatureKind.CATEGORICAL
EVENT_CATEGORIES = {
    "NAME_CONTRACT_TYPE": ("Cash loans", "Revolving loans"),
    "NAME_TYPE_SUITE": ("Unaccompanied", "Family", "Spouse, partner", "Children", "Other_A", "Other_B"),
    "WEEKDAY_APPR_PROCESS_START": (
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ),
}
DERIVED = ("CREDIT_INCOME_RATIO", "ANNUITY_INCOME_RATIO", "CREDIT_ANNUITY_RATIO", "CREDIT_GOODS_RATIO",
           "CREDIT_GOODS_DIFF", "EMPLOYED_AGE_RATIO", "EXT_SOURCE_MEAN", "EXT_SOURCE_MIN", "EXT_SOURCE_MAX",
           "EXT_SOURCE_STD", "EXT_SOURCE_PROD", "EXT_SOURCE_WEIGHTED")  # fmt: skip


# --- data and model ----------------------------------------------------------------------------------------
def make_schema(n_features: int) -> FeatureSchema:
    fields = [FeatureField(name=n, kind=CAT, source=E, categories=c) for n, c in EVENT_CATEGORIES.items()]
    amounts = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "HOUR_APPR_PROCESS_START")
    fields += [FeatureField(name=n, source=E) for n in amounts]
    client = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "DAYS_BIRTH", "DAYS_EMPLOYED")
    fields += [FeatureField(name=n, source=C) for n in client]
    fields.append(FeatureField(name="CODE_GENDER", kind=CAT, source=C, categories=("F", "M", "XNA")))
    n_generic = max(n_features - len(fields) - len(DERIVED), 0)
    fields += [FeatureField(name=f"AGG_{i:03d}", source=C) for i in range(n_generic)]
    fields += [FeatureField(name=n, source=D) for n in DERIVED]
    return FeatureSchema(fields=tuple(fields))


def make_rows(schema: FeatureSchema, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((n, len(schema)), dtype=np.float32)
    for j, f in enumerate(schema.fields):
        if f.kind is CAT:
            x[:, j] = rng.integers(0, len(f.categories or ()), n)
        elif f.name.startswith("AMT_"):
            x[:, j] = np.round(rng.lognormal(12.5, 0.6, n), 1)
        elif f.name.startswith("EXT_SOURCE"):
            x[:, j] = rng.beta(4, 3, n)
        elif f.name.startswith("DAYS_"):
            x[:, j] = -rng.integers(300, 25_000, n)
        elif f.name.startswith("HOUR_"):
            x[:, j] = rng.integers(0, 24, n)
        else:
            x[:, j] = rng.normal(0, 1, n) * rng.choice([1, 10, 1000])
        x[rng.random(n) < 0.3 if f.name.startswith("AGG") else rng.random(n) < 0.05, j] = np.nan
    apply_derived(x, schema)
    return x


def train_model(schema: FeatureSchema, trees: int, rows: int) -> BoosterModel:
    x = make_rows(schema, rows, 0)
    rng = np.random.default_rng(1)
    idx = schema.index
    signal = -3 * np.nan_to_num(x[:, idx["EXT_SOURCE_MEAN"]], nan=0.5) + 0.2 * np.nan_to_num(
        x[:, idx["CREDIT_INCOME_RATIO"]], nan=3
    )
    for j in range(30):  # many weak features, as in the real aggregates
        signal += 0.15 * np.nan_to_num(
            x[:, idx[f"AGG_{j:03d}"]] / (np.nanstd(x[:, idx[f"AGG_{j:03d}"]]) + 1e-9)
        )
    y = (rng.random(rows) < 1 / (1 + np.exp(-(signal - np.quantile(signal, 0.9)) * 2))).astype(int)
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "feature_fraction": 0.8,
              "min_child_samples": 20, "verbose": -1, "seed": 0}  # fmt: skip
    data = lgb.Dataset(
        x, y, feature_name=list(schema.names), categorical_feature=list(schema.categorical_names)
    )
    booster = lgb.train(params, data, num_boost_round=trees)
    threshold = float(np.quantile(booster.predict(x[:5000], num_threads=1), 1 - REFUSAL_RATE))
    return BoosterModel(booster, schema, threshold, model_version="bench")


def cached_model(features: int, trees: int, rows: int) -> BoosterModel:
    """Train the synthetic model once; later runs reuse it from var/bench/ (training takes minutes)."""
    from credit_scorer.settings import get_settings

    schema = make_schema(features)
    path = get_settings().paths.data_dir / "bench" / f"scoring_model_t{trees}_f{features}_r{rows}.txt"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("feature_version") == schema.version:
            return BoosterModel(
                lgb.Booster(model_file=str(path)), schema, float(info["threshold"]), model_version="bench"
            )
    model = train_model(schema, trees, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(str(path))
    meta.write_text(json.dumps({"threshold": model.threshold, "feature_version": schema.version}))
    return model


def load_saved(model_dir: Path) -> Any:
    from scoring.model import load_model

    return load_model(model_dir)


# --- timing ------------------------------------------------------------------------------------------------
def median_s(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process) per call. On a shared machine the CPU time
    is the steadier measure of the work; the wall time includes waiting for a core."""
    fn()  # warm
    wall, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def reps_for(batch: int, slow: bool, quick: bool) -> int:
    base = 3 if slow else max(10, 3000 // batch) if batch > 1 else 400
    return max(3, base // 4) if quick else base


def contrib_reasons(model: PreparedModel, inputs: list[ScoringInput], cached: CachedFeatures, k: int) -> None:
    """The alternative: score without reasons, then TreeSHAP (pred_contrib) on the refused rows."""
    batch = decide(model, inputs, cached, options=NO_REASONS).score
    refused = np.array([r.decision == "REFUS" for r in batch.results])
    if refused.any():
        contrib = reasons_by_pred_contrib(model.booster, batch.matrix[refused])
        picked = top_reasons(contrib, np.ones(len(contrib), dtype=bool), k)
        fields = model.schema.fields
        rows = np.flatnonzero(refused)
        for row, reasons in zip(rows.tolist(), picked, strict=True):
            [(fields[j].name, fields[j].decode(float(batch.matrix[row, j])), c) for j, c in reasons]


def cases_for(
    model: PreparedModel, lightgbm_model: PreparedModel, two_pass: PreparedModel, inputs: Any, cached: Any
) -> dict[str, Callable[[], object]]:
    def run(m: PreparedModel, reasons: ReasonsMode, num_threads: int = 1) -> Callable[[], object]:
        return partial(decide, m, inputs, cached, options=DecideOptions(reasons, 3, num_threads))

    return {
        "none": run(model, "none"),
        "refusals_fast": run(model, "refusals"),
        "none_lightgbm": run(lightgbm_model, "none"),
        "refusals_lightgbm": run(lightgbm_model, "refusals"),
        "refusals_two_pass": run(two_pass, "refusals"),
        "refusals_pred_contrib": partial(contrib_reasons, model, inputs, cached, 3),
        "all_fast": run(model, "all"),
        "none_openmp_default": run(lightgbm_model, "none", num_threads=0),
    }


def bench_service(model: PreparedModel, pool: np.ndarray, quick: bool) -> dict[str, Any]:
    schema = model.schema
    # the same model scored by LightGBM's own routing instead of the compiled forest: one pred_leaf pass
    # (probabilities from the leaves), and the older two-pass path (predict, then pred_leaf again)
    lightgbm_model = PreparedModel(model.model, use_forest=False)
    two_pass = PreparedModel(model.model, use_forest=False)
    two_pass.explainer.exact_probabilities = False
    out: dict[str, Any] = {}
    ev = [f.name for f in schema.event_fields]
    for n in BATCH_SIZES:
        rows = pool[:n]
        fields = [
            {name: schema.field(name).decode(float(r[schema.index[name]])) for name in ev} for r in rows
        ]
        inputs = [ScoringInput(100_000 + i, f) for i, f in enumerate(fields)]
        found = np.ones(n, dtype=bool)
        found[::20] = False  # 5 % unknown clients
        cached = CachedFeatures(rows, found, schema.version, time.time())
        cases = cases_for(model, lightgbm_model, two_pass, inputs, cached)
        res: dict[str, Any] = {}
        for name, fn in cases.items():
            wall, cpu = median_s(fn, reps_for(n, name == "refusals_pred_contrib", quick))
            res[name] = {
                "median_batch_s": wall,
                "median_batch_cpu_s": cpu,
                "decisions_per_s": n / wall,
                "decisions_per_cpu_s": n / cpu if cpu > 0 else None,
            }
        refused = sum(r.decision == "REFUS" for r in decide(model, inputs, cached).results)
        res["refused"] = refused
        out[str(n)] = res
    return out


def bench_codec(model: Any, pool: np.ndarray, quick: bool) -> dict[str, Any]:
    schema = model.schema
    row = pool[0]
    doc = {"event_id": "e-000001", "application_id": "app-000001", "sk_id_curr": 100002,
           "event_time": "2026-11-21T12:00:00.123456Z"}  # fmt: skip
    doc |= {
        f.name: schema.field(f.name).decode(float(row[schema.index[f.name]])) for f in schema.event_fields
    }
    raw = orjson.dumps(doc)
    n = 2000 if quick else 20000

    def per_event_cpu(fn: Callable[[], object]) -> float:
        return median_s(lambda: [fn() for _ in range(n)], 5)[1] / n

    parse_fast = per_event_cpu(lambda: parse_application(raw, 65536))
    parse_pyd = per_event_cpu(lambda: LoanApplication.model_validate_json(raw))
    app = parse_application(raw, 65536)
    cached = CachedFeatures(pool[:1], np.ones(1, dtype=bool), schema.version, time.time())
    result = decide(model, [app], cached, options=DecideOptions("all")).results[0]
    timings = StageTimings(time.time(), 0.001, 0.001, 0.0005)
    enc_fast = per_event_cpu(lambda: decision_bytes(app, result, timings))
    enc_obj = per_event_cpu(lambda: encode_decision(build_decision(app, result, timings)))
    enc_pyd = per_event_cpu(lambda: build_decision(app, result, timings).model_dump_json())
    return {
        "payload_bytes": len(raw),
        "parse_application_us": parse_fast * 1e6,
        "pydantic_model_validate_json_us": parse_pyd * 1e6,
        "decision_bytes_us": enc_fast * 1e6,
        "build_and_encode_decision_us": enc_obj * 1e6,
        "build_and_model_dump_json_us": enc_pyd * 1e6,
    }


def agreement(model: Any, pool: np.ndarray) -> dict[str, Any]:
    x = pool[:300]
    t0 = time.perf_counter()
    fast = model.explainer.contributions(model.booster, x, num_threads=1)
    t1 = time.perf_counter()
    shap = reasons_by_pred_contrib(model.booster, x)
    t2 = time.perf_counter()
    shap_top3 = np.argsort(-shap, axis=1)[:, :3]
    return {
        "rows": len(x),
        "top1_agreement": float(np.mean(fast.argmax(1) == shap.argmax(1))),
        "top1_in_shap_top3": float(
            np.mean([a in set(b) for a, b in zip(fast.argmax(1), shap_top3, strict=True)])
        ),
        "fast_us_per_row": (t1 - t0) / len(x) * 1e6,
        "pred_contrib_us_per_row": (t2 - t1) / len(x) * 1e6,
    }


# --- report ------------------------------------------------------------------------------------------------
def report(result: dict[str, Any]) -> None:
    m = result["model"]
    print(
        f"\nmodel: {m['trees']} trees, {m['leaves']} leaves, {m['features']} features ({m['source']}), "
        f"build {m['build_s']:.1f}s, prepare (assembler, verified forest, explainer) {m['prepare_s']:.2f}s, "
        f"exact one-pass probabilities: {m['exact_probabilities']}, compiled forest: {m['forest']}"
    )
    cols: tuple[str, ...] = ("none", "refusals_fast", "none_lightgbm", "refusals_lightgbm")
    cols += ("refusals_two_pass", "refusals_pred_contrib", "all_fast", "none_openmp_default")
    names: tuple[str, ...] = (
        "none",
        "REFUS fast",
        "none lgb",
        "REFUS lgb",
        "REFUS 2-pass",
        "REFUS shap",
        "all fast",
    )
    names += ("none lgb omp",)
    for key, title in (("decisions_per_s", "wall"), ("decisions_per_cpu_s", "per CPU-second")):
        print(f"\ndecide decisions/s, median ({title})")
        header = "".join(f"{h:>13}" for h in names)
        print(f"{'batch':>6}{header}{'refused':>8}{'fast/shap':>10}{'fast/none':>10}{'forest/lgb':>11}")
        for n, r in result["service"].items():
            d = {k: r[k][key] or float("nan") for k in cols}
            cells = "".join(f"{d[k]:>13,.0f}" for k in cols)
            vs_shap = d["refusals_fast"] / d["refusals_pred_contrib"]
            vs_none = d["refusals_fast"] / d["none"]
            vs_lgb = d["refusals_fast"] / d["refusals_lightgbm"]
            print(f"{n:>6}{cells}{r['refused']:>8}{vs_shap:>9.1f}x{vs_none:>9.2f}x{vs_lgb:>10.2f}x")
    c = result["codec"]
    fast, obj, pyd = (
        c["decision_bytes_us"],
        c["build_and_encode_decision_us"],
        c["build_and_model_dump_json_us"],
    )
    print(
        f"\ncodec per event, CPU ({c['payload_bytes']} B):"
        f" parse_application {c['parse_application_us']:.1f} µs"
        f" (model_validate_json {c['pydantic_model_validate_json_us']:.1f} µs);"
        f" decision_bytes {fast:.1f} µs"
        f" vs encode_decision(build_decision) {obj:.1f} µs ({obj / fast:.1f}x)"
        f" vs model_dump_json {pyd:.1f} µs ({pyd / fast:.1f}x)"
    )
    a = result["agreement"]
    print(
        f"reasons vs TreeSHAP on {a['rows']} rows: top-1 agreement {a['top1_agreement']:.1%}, "
        f"top-1 within SHAP top-3 {a['top1_in_shap_top3']:.1%}; contributions "
        f"{a['fast_us_per_row']:.0f} µs/row vs pred_contrib {a['pred_contrib_us_per_row']:.0f} µs/row "
        f"({a['pred_contrib_us_per_row'] / a['fast_us_per_row']:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--features", type=int, default=250)
    parser.add_argument("--rows", type=int, default=20_000, help="training rows of the synthetic model")
    parser.add_argument("--model", type=Path, default=None, help="use a saved model directory instead")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    loaded = load_saved(args.model) if args.model else cached_model(args.features, args.trees, args.rows)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = PreparedModel(loaded)
    prepare_s = time.perf_counter() - t0
    explainer = model.explainer
    pool = make_rows(model.schema, 500, 42)
    result = {
        "model": {
            "trees": explainer.n_trees,
            "features": len(model.schema),
            "leaves": explainer.n_leaves,
            "build_s": build_s,
            "prepare_s": prepare_s,
            "source": str(args.model or "synthetic"),
            "threshold": model.threshold,
            "exact_probabilities": explainer.exact_probabilities,
            "forest": model.forest is not None,
            "forest_fallback_reason": model.forest_fallback,
        },
        "service": bench_service(model, pool, args.quick),
        "codec": bench_codec(model, pool, args.quick),
        "agreement": agreement(model, pool),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "lightgbm": lgb.__version__,
        },
        "quick": args.quick,
    }
    report(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
