"""Reference baseline: a *default* LightGBM on the raw application_train columns, same held-out split.

This is the "about 0.72 AUC" yardstick of the issue. Same labelled clients, same stratified held-out
split (keyed on SK_ID_CURR with the same seed, see :mod:`training.split`), LightGBM's default
parameters (100 rounds, learning rate 0.1, 31 leaves; one thread), text columns declared categorical.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from training.evaluation import brier, roc_auc
from training.exceptions import RawDataError
from training.split import stratified_holdout
from training.threshold import choose_threshold, confusion_at


@dataclass(frozen=True)
class BaselineResult:
    rows: int
    features: int
    auc: float
    best_cost: float
    cost_at_0_5: float
    brier: float
    holdout_rows: int
    source: Path


@dataclass(frozen=True)
class RawApplications:
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    feature_cols: list[str]
    text_cols: list[str]
    source: Path


def load_applications(raw_dir: Path) -> RawApplications:
    """The labelled application_train rows, every raw column as float32 (text → category code)."""
    import polars as pl

    from feature_loader.exceptions import FeatureLoaderError
    from feature_loader.raw_tables import APPLICATION_TRAIN, scan_table

    try:
        scanned = scan_table(Path(raw_dir), APPLICATION_TRAIN)
        assert scanned is not None  # required table: absent raises
        lazy, path = scanned
        frame = lazy.collect()
    except FeatureLoaderError as exc:
        raise RawDataError(str(exc)) from exc
    except pl.exceptions.PolarsError as exc:
        raise RawDataError(f"{raw_dir}: application_train unreadable ({type(exc).__name__})") from exc
    frame = frame.filter(pl.col("TARGET").is_not_null()).sort("SK_ID_CURR")
    if frame.height == 0 or frame["TARGET"].n_unique() < 2:
        raise RawDataError(f"{path}: column 'TARGET' needs labelled rows of both classes")
    feature_cols = [c for c in frame.columns if c not in ("SK_ID_CURR", "TARGET")]
    text_cols = [c for c in feature_cols if frame.schema[c] == pl.String]
    x = (
        frame.select(
            pl.col(c).cast(pl.Categorical).to_physical().cast(pl.Float32)
            if c in text_cols
            else pl.col(c).cast(pl.Float32)
            for c in feature_cols
        )
        .to_numpy()
        .astype(np.float32)
    )
    return RawApplications(
        ids=frame["SK_ID_CURR"].to_numpy(),
        x=x,
        y=frame["TARGET"].cast(pl.Int8).to_numpy(),
        feature_cols=feature_cols,
        text_cols=text_cols,
        source=path,
    )


def fit_baseline(
    data: RawApplications, *, seed: int = 0, holdout: float = 0.2, fn_cost: float = 10.0, fp_cost: float = 1.0
) -> BaselineResult:
    held = stratified_holdout(data.ids, data.y, holdout, seed)
    ds = lgb.Dataset(
        data.x[~held],
        label=data.y[~held],
        feature_name=data.feature_cols,
        categorical_feature=data.text_cols,
        params={"verbose": -1},
    )
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": seed, "num_threads": 1}, ds)
    y, p = data.y[held], np.asarray(booster.predict(data.x[held]), dtype=np.float64)
    return BaselineResult(
        rows=int(data.y.size),
        features=len(data.feature_cols),
        auc=roc_auc(y, p),
        best_cost=choose_threshold(y, p, fn_cost, fp_cost).cost,
        cost_at_0_5=confusion_at(y, p, 0.5).cost(fn_cost, fp_cost),
        brier=brier(y, p),
        holdout_rows=int(held.sum()),
        source=data.source,
    )


def run_baseline(
    raw_dir: Path, *, seed: int = 0, holdout: float = 0.2, fn_cost: float = 10.0, fp_cost: float = 1.0
) -> BaselineResult:
    return fit_baseline(
        load_applications(raw_dir), seed=seed, holdout=holdout, fn_cost=fn_cost, fp_cost=fp_cost
    )
