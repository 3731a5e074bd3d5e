"""Decision quality on an honest split of a raw sample: `credit-scorer train evaluate`.

1. :mod:`training.honest_split` turns the held-out applicants into new clients (none of their rows in
   the training build, their application without TARGET), and both parts are built with
   ``features build`` code (:func:`feature_loader.build.build_features`).
2. Candidates are trained on the training build with the real pipeline (:func:`training.train.train_model`):
   today's weighted model served raw, the weighted model with isotonic or Platt calibration fitted on its
   out-of-fold scores, the unweighted model (the new default), and, as the yardstick of the unknown-client
   path, an application-only LightGBM (same pipeline, same rows, every cached feature removed).
3. The held-out applications go through the one decision use case, :func:`scoring.decide.decide`, as
   events (:class:`schemas.events.LoanApplication` carrying the whole form): once for clients known to
   the cache (their history from the held-out build) and once for the same clients unknown to it
   (``features_found=false``). Each path gets AUC, Brier next to the base-rate Brier, log loss, ECE,
   the business cost at the model's threshold next to the best threshold in hindsight, approval rate.

Every intermediate (split, builds, models) is kept under the work folder and reused when present.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from training.calibrate import calibration_metrics
from training.evaluation import roc_auc
from training.fairness import fairness_markdown
from training.threshold import choose_threshold, confusion_at

ProgressFn = Callable[[str], None]
NEW = "unweighted"
TODAY = "today_weighted"
APP_ONLY = "application_only"
# name → (scale_pos_weight, calibration)
CANDIDATES: dict[str, tuple[bool, str]] = {
    TODAY: (True, "identity"),
    "weighted_isotonic": (True, "isotonic"),
    "weighted_platt": (True, "platt"),
    NEW: (False, "identity"),
}


@dataclass(frozen=True)
class Work:
    """The folders of one evaluation under its work folder."""

    root: Path

    @property
    def raw_holdout(self) -> Path:
        return self.root / "raw-holdout"

    @property
    def features_train(self) -> Path:
        return self.root / "features-train"

    @property
    def features_holdout(self) -> Path:
        return self.root / "features-holdout"

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / name


def prepare(raw_dir: Path, work: Work, seed: int, fraction: float, step: ProgressFn) -> None:
    """Split and build (each skipped when its output is already there)."""
    from feature_loader.build import build_features
    from training.honest_split import split_raw

    if not (work.root / "holdout_labels.csv").is_file():
        split = split_raw(raw_dir, work.root, fraction=fraction, seed=seed)
        step(
            f"honest split: {split.holdout_clients:,} held-out applicants "
            f"({split.holdout_positives} defaults)"
        )
    for part in ("train", "holdout"):
        out = work.root / f"features-{part}"
        if not (out / "build_info.json").is_file():
            result = build_features(work.root / f"raw-{part}", out)
            step(f"features build of raw-{part}: {result.rows:,} clients, schema {result.schema.version}")


def train_candidates(work: Work, seed: int, step: ProgressFn) -> dict[str, Path]:
    """Every candidate's model directory (trained when absent)."""
    from scoring.model import resolve_model_dir
    from scoring.model_card import MODEL_CARD_FILE
    from training.dataset import load_labelled
    from training.train import TrainConfig, fit_table, train_model
    from training.unknown_path import unknown_matrix

    out: dict[str, Path] = {}
    for name in (*CANDIDATES, APP_ONLY):
        models = work.model_dir(name)
        if models.is_dir() and any((d / MODEL_CARD_FILE).is_file() for d in models.iterdir()):
            out[name] = resolve_model_dir(models)
            continue
        weighted, calibration = CANDIDATES.get(name, (False, "identity"))
        cfg = TrainConfig(seed=seed, imbalance=weighted, calibration=calibration, plots=name == NEW)  # type: ignore[arg-type]
        if name == APP_ONLY:
            table = load_labelled(work.features_train)
            masked = type(table)(
                table.ids,
                unknown_matrix(table.x, table.schema),
                table.y,
                table.schema,
                table.fingerprint,
                table.source,
            )
            out[name] = fit_table(masked, models, cfg, lambda _m: None).model_dir
        else:
            out[name] = train_model(work.features_train, models, cfg).model_dir
        step(f"trained {name}: {out[name]}")
    return out


def holdout_events(work: Work) -> tuple[list[Any], np.ndarray]:
    """The held-out applications as events carrying the whole form, and their labels (same order)."""
    from feature_loader.raw_tables import APPLICATION_TEST, scan_table
    from schemas.events import APPLICATION_FIELDS, LoanApplication

    scanned = scan_table(work.raw_holdout, APPLICATION_TEST)
    assert scanned is not None
    frame = scanned[0].collect().sort("SK_ID_CURR")
    labels = pl.read_csv(work.root / "holdout_labels.csv").sort("SK_ID_CURR")
    if frame["SK_ID_CURR"].to_list() != labels["SK_ID_CURR"].to_list():
        raise ValueError(f"{work.raw_holdout}: applicants differ from holdout_labels.csv")
    carried = [c for c in frame.columns if c in set(APPLICATION_FIELDS)]
    now = datetime.now(UTC)
    events = [
        LoanApplication.model_validate(
            {"sk_id_curr": row["SK_ID_CURR"], "event_time": now, **{c: row[c] for c in carried}}
        )
        for row in frame.iter_rows(named=True)
    ]
    return events, labels["TARGET"].to_numpy().astype(np.int8)


def cached_features(work: Work, ids: list[int], schema: Any) -> np.ndarray:
    """The held-out build's rows (what the cache would hold for these clients), in ``ids`` order."""
    frame = pl.read_parquet(work.features_holdout / "features.parquet").sort("SK_ID_CURR")
    if frame["SK_ID_CURR"].to_list() != ids:
        raise ValueError(f"{work.features_holdout}: clients differ from the held-out applications")
    return np.ascontiguousarray(frame.select(schema.names).to_numpy(), dtype=np.float32)


@dataclass(frozen=True)
class PathDecisions:
    """What :func:`scoring.decide.decide` made of the held-out applications on one path."""

    probabilities: np.ndarray
    threshold: float
    matrix: np.ndarray  # the assembled vectors (the segments are read from them, as live)
    approved: np.ndarray  # ACCORD


def decide_probabilities(
    model_dir: Path, events: list[Any], matrix: np.ndarray, found: bool
) -> PathDecisions:
    """Served probabilities of default of ``events`` (through :func:`scoring.decide.decide`), threshold,
    assembled vectors and approvals."""
    from scoring.decide import DecideOptions, decide
    from scoring.features import CachedFeatures
    from scoring.model import load_model
    from scoring.prepared import PreparedModel

    model = PreparedModel(load_model(model_dir))
    n = len(events)
    features = CachedFeatures(
        matrix=matrix if found else np.full_like(matrix, np.nan),
        found=np.full(n, found),
        feature_version=model.feature_version,
        loaded_at=None,
    )
    decided = decide(model, events, features, options=DecideOptions(reasons="none"))
    if decided.unscorable:
        raise ValueError(
            f"{len(decided.unscorable)} held-out applications unscorable: {decided.unscorable[0]}"
        )
    if any(r.features_found != found for r in decided.results):
        raise AssertionError("decide did not keep features_found")
    return PathDecisions(
        np.array([r.probability for r in decided.results]),
        model.threshold,
        decided.score.matrix,
        np.array([r.decision == "ACCORD" for r in decided.results]),
    )


def path_metrics(y: np.ndarray, p: np.ndarray, threshold: float, base_rate: float) -> dict[str, float]:
    """Ranking, calibration and business cost (10·FN + 1·FP) of one decision path."""
    at_t = confusion_at(y, p, threshold)
    best = choose_threshold(y, p, 10.0, 1.0)
    return {
        "auc": roc_auc(y, p),
        **calibration_metrics(y, p, base_rate),
        "threshold": threshold,
        "cost_at_threshold": at_t.cost(10.0, 1.0),
        "best_threshold": best.threshold,
        "best_cost": best.cost,
        "cost_accept_all": float(10 * int(y.sum())),
        "approval_rate": (at_t.tn + at_t.fn) / y.size,
    }


def score_candidates(
    models: dict[str, Path],
    events: list[Any],
    y: np.ndarray,
    matrix: np.ndarray,
    base_rate: float,
    step: ProgressFn,
    min_group_decisions: int = 100,
) -> tuple[dict[str, Any], list[tuple[str, np.ndarray, np.ndarray]]]:
    """Every model on both paths (known, unknown clients): metrics, fairness by segment (the live
    metric's, :mod:`scoring.fairness`), and the reliability curves of today's and the chosen model."""
    from scoring.fairness import fairness_report
    from scoring.model import load_model

    results: dict[str, Any] = {}
    curves: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name, model_dir in models.items():
        loaded = load_model(model_dir)
        card = loaded.card
        row: dict[str, Any] = {
            "model_version": card.model_version,
            "calibration": card.calibration.method,
            "scale_pos_weight": card.params.get("scale_pos_weight"),
        }
        for path, found in (("known", True), ("unknown", False)):
            d = decide_probabilities(model_dir, events, matrix, found)
            row[path] = path_metrics(y, d.probabilities, d.threshold, base_rate)
            row[path]["fairness"] = fairness_report(
                loaded.schema, d.matrix, d.approved, d.probabilities, min_group_decisions
            )
            if name in (TODAY, NEW):
                curves.append((f"{name}, {path} clients", y, d.probabilities))
        results[name] = row
        step(f"evaluated {name}")
    return results, curves


def evaluate(
    raw_dir: Path,
    work_dir: Path,
    *,
    seed: int = 0,
    fraction: float = 0.2,
    progress: ProgressFn | None = None,
    reliability_png: Path | None = None,
    min_group_decisions: int = 100,
) -> dict[str, Any]:
    """The whole evaluation (module docstring); returns the report document."""
    from scoring.model import load_model
    from training.baseline import run_baseline

    step = progress or (lambda _m: None)
    work = Work(Path(work_dir))
    prepare(Path(raw_dir), work, seed, fraction, step)
    models = train_candidates(work, seed, step)
    events, y = holdout_events(work)
    ids = [e.sk_id_curr for e in events]
    chosen = load_model(models[NEW])
    matrix = cached_features(work, ids, chosen.schema)
    base_rate = chosen.card.training_data.positives / chosen.card.training_data.rows  # the training's
    results, curves = score_candidates(models, events, y, matrix, base_rate, step, min_group_decisions)
    if reliability_png is not None:
        from training.plots import write_reliability

        write_reliability(reliability_png, curves)
    baseline = run_baseline(Path(raw_dir), seed=seed, holdout=fraction)
    new_u, ref = results[NEW]["unknown"], results[APP_ONLY]["unknown"]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "raw": str(raw_dir),
        "seed": seed,
        "holdout_fraction": fraction,
        "holdout_applicants": int(y.size),
        "holdout_defaults": int(y.sum()),
        "base_rate_training": base_rate,
        "chosen": NEW,
        "models": results,
        "raw_column_baseline": {
            "auc": baseline.auc,
            "best_cost": baseline.best_cost,
            "brier": baseline.brier,
        },
        "checks": {
            "unknown_auc_minus_application_only_auc": new_u["auc"] - ref["auc"],
            "unknown_auc_within_0_01_of_application_only": abs(new_u["auc"] - ref["auc"]) <= 0.01
            or new_u["auc"] >= ref["auc"],
            "unknown_cost_not_above_accept_all": new_u["cost_at_threshold"] <= new_u["cost_accept_all"],
            "known_auc_new_minus_today": results[NEW]["known"]["auc"] - results[TODAY]["known"]["auc"],
        },
    }


def _row(name: str, path: str, m: dict[str, float]) -> str:
    return (
        f"| {name} | {path} | {m['auc']:.4f} | {m['brier']:.4f} ({m['brier_base_rate']:.4f}) | "
        f"{m['log_loss']:.4f} | {m['ece']:.4f} | {m['mean_probability']:.3f} | {m['threshold']:.3f} | "
        f"{m['cost_at_threshold']:,.0f} | {m['best_cost']:,.0f} at {m['best_threshold']:.3f} | "
        f"{m['cost_accept_all']:,.0f} | {m['approval_rate']:.1%} |"
    )


def report_markdown(report: dict[str, Any], command: str) -> str:
    """The report as a Markdown page (bench/results/decision_quality.md)."""
    models, checks = report["models"], report["checks"]
    lines = [
        "# Decision quality on the honest split of the real sample",
        "",
        f"Generated by `{command}` ({report['generated_at']}). Held-out applicants: "
        f"{report['holdout_applicants']:,} ({report['holdout_defaults']} defaults), none of their rows in "
        "the training build, their application sent as an event carrying the whole form, decided by "
        "`scoring.decide.decide`: **known** = their history in the cache (held-out build), **unknown** = "
        "the same clients absent from the cache (`features_found=false`). Cost = 10·FN + 1·FP; "
        "ECE over 10 equal-count bins; Brier in brackets: predicting the training default rate for everyone.",
        "",
        "| model | clients | AUC | Brier (base rate) | log loss | ECE | mean P(default) | threshold | "
        "cost at threshold | best cost in hindsight | cost approving all | approval rate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in models.items():
        for path in ("known", "unknown"):
            lines.append(_row(name, path, row[path]))
    base = report["raw_column_baseline"]
    lines += [
        "",
        f"Chosen: **{report['chosen']}** (unweighted training, served as it is: `calibration: identity`). "
        "today_weighted is the model as trained before this change (`scale_pos_weight`, scores served raw); "
        "weighted_isotonic / weighted_platt calibrate that model on its out-of-fold scores; "
        "application_only is the same pipeline on the same rows with every cached (history) feature "
        f"removed. Default LightGBM on the raw application columns, same split: AUC {base['auc']:.4f}.",
        "",
        "Checks:",
        f"- unknown-client AUC minus application-only LightGBM AUC: "
        f"{checks['unknown_auc_minus_application_only_auc']:+.4f} "
        f"(within 0.01: {checks['unknown_auc_within_0_01_of_application_only']});",
        f"- unknown-client cost at the threshold not above approving everyone: "
        f"{checks['unknown_cost_not_above_accept_all']};",
        f"- known-client AUC, chosen minus today's: {checks['known_auc_new_minus_today']:+.4f};",
        f"- threshold of the chosen model (business cost on its calibrated out-of-fold scores): "
        f"{models[report['chosen']]['known']['threshold']:.3f}; theory for a calibrated probability: "
        "1/(1+10) = 0.091; best in hindsight on this split: "
        f"{models[report['chosen']]['known']['best_threshold']:.3f}.",
        "",
        "Reliability diagram: `decision_quality_reliability.png`.",
        "",
        *fairness_markdown(models, report["chosen"]),
    ]
    return "\n".join(lines)
