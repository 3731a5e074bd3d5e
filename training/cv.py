"""Stratified k-fold cross-validation with early stopping: chooses n_estimators, gives out-of-fold scores.

Runs only on the training part (the held-out split never reaches this module). The folds share one
binned LightGBM dataset (``Dataset.subset``), so the features are binned once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from training.evaluation import roc_auc
from training.split import stratified_folds


@dataclass(frozen=True)
class CVResult:
    best_iterations: list[int]
    fold_auc: list[float]
    oof: npt.NDArray[np.float64]  # out-of-fold P(default) of every training row
    n_estimators: int  # rounds for the final model: mean best iteration over the folds

    @property
    def mean_auc(self) -> float:
        return float(np.mean(self.fold_auc))


def make_dataset(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int8],
    feature_names: Sequence[str],
    categorical: Sequence[str],
    params: dict[str, Any],
) -> lgb.Dataset:
    """A constructed LightGBM dataset; categoricals declared by name (values are level indices)."""
    ds = lgb.Dataset(
        x,
        label=y.astype(np.float32),
        feature_name=list(feature_names),
        categorical_feature=list(categorical) if categorical else "auto",
        params=dataset_params(params),
        free_raw_data=False,
    )
    return ds.construct()


def dataset_params(params: dict[str, Any]) -> dict[str, Any]:
    keys = ("max_bin", "min_data_in_bin", "verbose", "num_threads", "seed", "feature_pre_filter")
    return {k: params[k] for k in keys if k in params}


def cross_validate(
    dataset: lgb.Dataset,
    ids: npt.NDArray[np.int64],
    y: npt.NDArray[np.int8],
    params: dict[str, Any],
    *,
    folds: int,
    seed: int,
    max_rounds: int,
    early_stopping: int,
    on_fold: Callable[[int, int, float], None] | None = None,
) -> CVResult:
    """``folds``-fold stratified CV on ``dataset`` (rows aligned with ``ids``/``y``).

    ``early_stopping <= 0`` disables early stopping (every fold runs ``max_rounds``).
    """
    fold_of = stratified_folds(ids, y, folds, seed)
    oof = np.zeros(y.size, dtype=np.float64)
    best: list[int] = []
    aucs: list[float] = []
    x = np.asarray(dataset.get_data())
    for k in range(folds):
        train_idx = np.flatnonzero(fold_of != k)
        valid_idx = np.flatnonzero(fold_of == k)
        train_set = dataset.subset(train_idx.tolist())
        valid_set = dataset.subset(valid_idx.tolist())
        callbacks: list[Callable[..., Any]] = (
            [lgb.early_stopping(early_stopping, first_metric_only=True, verbose=False)]
            if early_stopping > 0
            else []
        )
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=max_rounds,
            valid_sets=[valid_set],
            valid_names=["valid"],
            callbacks=callbacks,
        )
        iteration = (booster.best_iteration if early_stopping > 0 else 0) or booster.current_iteration()
        oof[valid_idx] = booster.predict(x[valid_idx], num_iteration=iteration)
        best.append(int(iteration))
        aucs.append(roc_auc(y[valid_idx], oof[valid_idx]))
        if on_fold is not None:
            on_fold(k, iteration, aucs[-1])
    return CVResult(
        best_iterations=best,
        fold_auc=aucs,
        oof=oof,
        n_estimators=max(1, round(float(np.mean(best)))),
    )
