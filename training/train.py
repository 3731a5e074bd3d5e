"""The training pipeline: feature directory → verified model directory with its card.

1. Labelled rows (IS_TRAIN with a TARGET) of the feature build, features as float32 in schema order.
2. An honest stratified held-out split (``holdout``, fixed seed, keyed on SK_ID_CURR) is set aside: it
   takes no part in CV, early stopping or the threshold choice; every reported metric is computed on it.
3. Stratified k-fold CV with early stopping on the rest chooses ``n_estimators`` and gives out-of-fold
   scores, on which the threshold minimising ``fn·FN + fp·FP`` (10·FN + 1·FP) is chosen.
4. The final model is fitted on the whole training part with ``n_estimators`` rounds.

Calibration: the served probability of default must be a probability (a lender prices, provisions
and sets cut-offs on it). Training is unweighted by default (``imbalance=False``): on the real sample
the unweighted model is calibrated by itself and ranks as well as with ``scale_pos_weight``
(bench/results/decision_quality.md compares it with isotonic and Platt calibrations of the weighted
model fitted on out-of-fold scores). Whatever the choice, ``calibration`` is fitted on the out-of-fold
scores and written into the card; the threshold is chosen on the calibrated out-of-fold scores and every
held-out metric is on the calibrated scale, the one :func:`scoring.decide.decide` serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from credit_scorer.settings import FairnessSettings
from scoring.calibration import Calibrator
from scoring.model import booster_text, save_model, sha256_bytes
from scoring.model_card import CalibrationMethod, ModelCard, TrainingData
from training.calibrate import calibration_metrics, fit_calibration
from training.cv import CVResult, cross_validate, make_dataset
from training.dataset import LabelledTable, load_labelled
from training.evaluation import brier, roc_auc
from training.exceptions import FeatureTableError
from training.fairness import training_fairness
from training.reference import build_reference, top_by_gain
from training.split import stratified_holdout
from training.threshold import ThresholdChoice, choose_threshold, confusion_at
from training.unknown_path import measure_unknown_path, unknown_matrix

ProgressFn = Callable[[str], None]

# Chosen by 5-fold CV on the training part of the real sample (never on the held-out split): with ~1,100
# defaults and ~280 mostly sparse features, small, strongly regularised trees that each see a small
# share of the features generalise best (CV AUC against 31-leaf trees on all features: see
# bench/results/training_choices.md).
BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "learning_rate": 0.03,
    "num_leaves": 7,
    "max_depth": -1,
    "min_child_samples": 80,
    "feature_fraction": 0.15,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 20.0,
    "path_smooth": 20.0,
    "max_bin": 255,
    # one thread: on a shared 2-core machine OpenMP threads spin-wait on each other (CPU time of 2 threads
    # vs 1 under load in bench/results/training_choices.md); the model is small enough for one core
    "num_threads": 1,
    "deterministic": True,
    "force_col_wise": True,
    "feature_pre_filter": False,
    "verbose": -1,
}


@dataclass(frozen=True)
class TrainConfig:
    folds: int = 5
    seed: int = 0
    holdout: float = 0.2
    max_rounds: int = 3000
    early_stopping: int = 200
    fn_cost: float = 10.0
    fp_cost: float = 1.0
    imbalance: bool = False  # True: scale_pos_weight = negatives / positives (then calibrate)
    calibration: CalibrationMethod = "identity"  # fitted on the out-of-fold scores
    plots: bool = True
    reference_top_k: int = 10
    params: dict[str, Any] = field(default_factory=dict)  # overrides of BASE_PARAMS
    # rows a group needs to count in the card's disparate-impact ratio: the live metric's setting
    fairness_min_group_decisions: int = field(default_factory=lambda: FairnessSettings().min_group_decisions)

    def lgb_params(self, negatives: int, positives: int) -> dict[str, Any]:
        params = {**BASE_PARAMS, "seed": self.seed, **self.params}
        if self.imbalance:
            params["scale_pos_weight"] = round(negatives / max(positives, 1), 6)
        return params

    def steps(self) -> int:
        """Number of progress steps :func:`train_model` reports."""
        return self.folds + 4 + int(self.plots)


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    card: ModelCard
    cv: CVResult
    seconds: float


def train_model(
    features_dir: Path,
    models_dir: Path,
    config: TrainConfig | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train on ``features_dir`` and save the model under ``models_dir/<model_version>/``."""
    cfg = config or TrainConfig()
    step = progress or (lambda _msg: None)
    started = time.perf_counter()

    table = load_labelled(Path(features_dir))
    step(f"loaded {table.y.size:,} labelled rows × {len(table.schema)} features")
    return fit_table(table, Path(models_dir), cfg, step, started)


@dataclass(frozen=True)
class _Split:
    """The training part (CV, early stopping, threshold, final fit) and the held-out part (metrics)."""

    x_tr: np.ndarray
    y_tr: np.ndarray
    ids_tr: np.ndarray
    x_ho: np.ndarray
    y_ho: np.ndarray

    @property
    def train_positives(self) -> int:
        return int(self.y_tr.sum())


def fit_table(
    table: LabelledTable,
    models_dir: Path,
    cfg: TrainConfig,
    step: ProgressFn,
    started: float | None = None,
) -> TrainResult:
    started = time.perf_counter() if started is None else started
    schema = table.schema
    names = list(schema.names)
    split = _holdout_split(table, cfg)
    pos_tr = split.train_positives
    params = cfg.lgb_params(split.y_tr.size - pos_tr, pos_tr)

    dataset = make_dataset(split.x_tr, split.y_tr, names, list(schema.categorical_names), params)
    cv = cross_validate(
        dataset,
        split.ids_tr,
        split.y_tr,
        params,
        folds=cfg.folds,
        seed=cfg.seed,
        max_rounds=cfg.max_rounds,
        early_stopping=cfg.early_stopping,
        on_fold=lambda k, it, auc: step(f"CV fold {k + 1}/{cfg.folds}: {it} rounds, AUC {auc:.4f}"),
    )
    calibrator, oof, choice = _calibrate_and_choose(split, cv, cfg, step)

    booster = lgb.train(params, dataset, num_boost_round=cv.n_estimators)
    step(f"final model: {cv.n_estimators} trees")

    p_ho = calibrator.apply(booster.predict(split.x_ho))
    p_unknown = calibrator.apply(booster.predict(unknown_matrix(split.x_ho, schema)))
    unknown = measure_unknown_path(split.y_ho, p_unknown, p_ho, choice.threshold, cfg.fn_cost, cfg.fp_cost)
    metrics = {
        **holdout_metrics(split.y_ho, p_ho, choice.threshold, cfg),
        **calibration_metrics(split.y_ho, p_ho, float(split.y_tr.mean())),
        **_cv_metrics(split, cv, choice, oof),
        "unknown_client_auc": unknown.auc,
        "unknown_client_cost_at_threshold": unknown.cost_at_threshold,
    }
    gains = booster.feature_importance(importance_type="gain")
    top = top_by_gain(gains, names, cfg.reference_top_k)
    reference = build_reference(p_ho, split.x_tr, names, top)  # served (calibrated) scores

    text = booster_text(booster)
    now = datetime.now(UTC)
    version = f"{now:%Y%m%dT%H%M}-{sha256_bytes(text)[:8]}"
    metrics["train_seconds"] = round(time.perf_counter() - started, 3)
    card = _model_card(table, split, cfg, params, cv, choice, metrics, p_ho, reference, version, now)
    parts = {"out_of_fold": (split.x_tr, oof), "holdout": (split.x_ho, p_ho)}
    fairness = training_fairness(schema, parts, choice.threshold, cfg.fairness_min_group_decisions)
    card = card.model_copy(
        update={"calibration": calibrator.calibration, "unknown_client_path": unknown, "fairness": fairness}
    )
    model_dir = save_model(booster, card, schema, models_dir / version)
    step(f"saved {model_dir}")
    from scoring.model import load_model  # re-read: the card on disk carries the sha256

    saved = load_model(model_dir, expected_schema=schema)
    if cfg.plots:
        _write_plots(model_dir, split, p_ho, oof, choice, gains, names, cfg)
        step("plots written")
    return TrainResult(model_dir=model_dir, card=saved.card, cv=cv, seconds=time.perf_counter() - started)


def _calibrate_and_choose(
    split: _Split, cv: CVResult, cfg: TrainConfig, step: ProgressFn
) -> tuple[Calibrator, np.ndarray, ThresholdChoice]:
    """The calibration fitted on the out-of-fold scores, those scores calibrated, and the threshold
    chosen on them: the served scale."""
    calibration = fit_calibration(
        cfg.calibration, split.y_tr, cv.oof, f"out-of-fold scores of {split.y_tr.size:,} training rows"
    )
    calibrator = Calibrator(calibration)
    oof = calibrator.apply(cv.oof)
    choice = choose_threshold(split.y_tr, oof, cfg.fn_cost, cfg.fp_cost)
    step(
        f"threshold {choice.threshold:.4f} "
        f"(calibration {calibration.method}, out-of-fold cost {choice.cost:,.0f})"
    )
    return calibrator, oof, choice


def _holdout_split(table: LabelledTable, cfg: TrainConfig) -> _Split:
    held = stratified_holdout(table.ids, table.y, cfg.holdout, cfg.seed)
    split = _Split(
        x_tr=table.x[~held],
        y_tr=table.y[~held],
        ids_tr=table.ids[~held],
        x_ho=table.x[held],
        y_ho=table.y[held],
    )
    if split.train_positives < cfg.folds or int(split.y_ho.sum()) == 0:
        raise FeatureTableError(
            f"{table.source}: too few positive TARGET rows ({table.positives}) for a held-out split and "
            f"{cfg.folds}-fold CV"
        )
    return split


def _cv_metrics(split: _Split, cv: CVResult, choice: ThresholdChoice, oof: np.ndarray) -> dict[str, float]:
    """What the cross-validation says, beside the held-out metrics (AUC, spread, out-of-fold cost)."""
    return {
        "cv_auc_mean": cv.mean_auc,
        "cv_auc_std": float(np.std(cv.fold_auc)),
        "oof_auc": roc_auc(split.y_tr, oof),
        "oof_cost_at_threshold": choice.cost,
        "n_estimators": float(cv.n_estimators),
    }


def _model_card(
    table: LabelledTable,
    split: _Split,
    cfg: TrainConfig,
    params: dict[str, Any],
    cv: CVResult,
    choice: ThresholdChoice,
    metrics: dict[str, float],
    p_ho: np.ndarray,
    reference: dict[str, Any],
    version: str,
    now: datetime,
) -> ModelCard:
    schema = table.schema
    return ModelCard(
        model_version=version,
        created_at=now,
        feature_schema_version=schema.version,
        features=list(schema.names),
        categorical_features=list(schema.categorical_names),
        threshold=choice.threshold,
        cost_matrix={"fn": cfg.fn_cost, "fp": cfg.fp_cost},
        metrics=metrics,
        confusion_matrix=confusion_at(split.y_ho, p_ho, choice.threshold).as_dict(),
        training_data=TrainingData(
            fingerprint=table.fingerprint,
            rows=int(table.y.size),
            positives=table.positives,
            train_rows=int(split.y_tr.size),
            holdout_rows=int(split.y_ho.size),
            source=str(table.source),
        ),
        params={
            **params,
            "n_estimators": cv.n_estimators,
            "folds": cfg.folds,
            "holdout": cfg.holdout,
            "early_stopping_rounds": cfg.early_stopping,
            "cv_best_iterations": cv.best_iterations,
        },
        lightgbm_version=lgb.__version__,
        model_sha256="",  # filled by save_model
        reference=reference,
    )


def _write_plots(
    model_dir: Path,
    split: _Split,
    p_ho: np.ndarray,
    oof: np.ndarray,
    choice: ThresholdChoice,
    gains: np.ndarray,
    names: list[str],
    cfg: TrainConfig,
) -> None:
    from training.plots import write_plots

    write_plots(
        model_dir / "plots",
        y_holdout=split.y_ho,
        p_holdout=p_ho,
        y_oof=split.y_tr,
        p_oof=oof,
        threshold=choice.threshold,
        gains=gains,
        feature_names=names,
        fn_cost=cfg.fn_cost,
        fp_cost=cfg.fp_cost,
    )


def holdout_metrics(y: np.ndarray, p: np.ndarray, threshold: float, cfg: TrainConfig) -> dict[str, float]:
    """AUC, Brier, business cost at the chosen threshold, at the best possible one and at 0.5."""
    oracle = choose_threshold(y, p, cfg.fn_cost, cfg.fp_cost)
    at_t = confusion_at(y, p, threshold)
    cost_t = at_t.cost(cfg.fn_cost, cfg.fp_cost)
    refuse_all = float(cfg.fp_cost * (y.size - int(y.sum())))
    accept_all = float(cfg.fn_cost * int(y.sum()))
    return {
        "auc": roc_auc(y, p),
        "brier": brier(y, p),
        "approval_rate": (at_t.tn + at_t.fn) / y.size,
        "cost_at_threshold": cost_t,
        "cost_per_applicant": cost_t / y.size,
        "best_cost": oracle.cost,
        "best_threshold": oracle.threshold,
        "cost_at_0_5": confusion_at(y, p, 0.5).cost(cfg.fn_cost, cfg.fp_cost),
        "cost_accept_all": accept_all,
        "cost_refuse_all": refuse_all,
        "refusal_rate": (at_t.tp + at_t.fp) / y.size,
        "recall": at_t.tp / max(at_t.tp + at_t.fn, 1),
        "precision": at_t.tp / max(at_t.tp + at_t.fp, 1),
        "holdout_rows": float(y.size),
        "holdout_positives": float(y.sum()),
    }
