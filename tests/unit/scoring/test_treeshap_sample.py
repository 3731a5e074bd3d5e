"""Exact TreeSHAP on a model trained on the real Home Credit sample (skips when ../shared is absent):
equal to LightGBM's ``pred_contrib`` to 1e-9, so the top-4 reasons of every refusal are pred_contrib's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feature_cache.loader import read_feature_table
from feature_loader.build import build_features
from scoring.forest import probe_rows
from scoring.model import load_model
from scoring.prepared import PreparedModel
from scoring.reasons import top_reasons
from training.dataset import load_labelled
from training.train import TrainConfig, fit_table


@pytest.fixture(scope="module")
def sample_model(
    sample_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PreparedModel, np.ndarray]:
    """A production-shaped model (7 leaves) trained on the sample's feature build, and 1,500 of its rows."""
    features = tmp_path_factory.mktemp("sample-features")
    build_features(sample_dir, features)
    config = TrainConfig(folds=2, max_rounds=120, early_stopping=0, plots=False, params={"num_leaves": 7})
    result = fit_table(
        load_labelled(features), tmp_path_factory.mktemp("sample-model"), config, lambda _m: None
    )
    model = PreparedModel(load_model(result.model_dir))
    _, matrix = read_feature_table(features / "features.parquet", model.schema)
    rows = np.random.default_rng(0).choice(len(matrix), 1500, replace=False)
    return model, matrix[np.sort(rows)]


def test_sample_model_contributions_equal_pred_contrib(
    sample_model: tuple[PreparedModel, np.ndarray],
) -> None:
    model, rows = sample_model
    assert model.shap is not None, model.shap_fallback
    x = np.vstack([rows, probe_rows(model.booster, 256)])
    expected = np.asarray(model.booster.predict(x, pred_contrib=True, num_threads=1))
    np.testing.assert_allclose(model.shap.contributions(x), expected, rtol=0, atol=1e-9)


def test_sample_refusals_top4_identical_to_pred_contrib(
    sample_model: tuple[PreparedModel, np.ndarray],
) -> None:
    model, rows = sample_model
    assert model.shap is not None, model.shap_fallback
    refused = model.booster.predict(rows, num_threads=1) >= np.quantile(model.booster.predict(rows), 0.7)
    x = rows[refused]
    ours = top_reasons(model.shap.contributions(x)[:, :-1], np.ones(len(x), bool), 4)
    ref = top_reasons(
        np.asarray(model.booster.predict(x, pred_contrib=True))[:, :-1], np.ones(len(x), bool), 4
    )
    assert len(x) > 300
    assert [{j for j, _ in r} for r in ours] == [{j for j, _ in r} for r in ref]


def test_sample_refusals_reason_codes_identical_to_pred_contrib(
    sample_model: tuple[PreparedModel, np.ndarray],
) -> None:
    """The top-4 reason CODES (the committed catalogue's groups) of the sample's refusals, from the
    compiled TreeSHAP and from pred_contrib: the same set on every refusal (issue: at least 99 %)."""
    model, rows = sample_model
    assert model.shap is not None, model.shap_fallback
    refused = model.booster.predict(rows, num_threads=1) >= np.quantile(model.booster.predict(rows), 0.7)
    x = rows[refused]
    towards = np.ones(len(x), bool)
    ours = model.codes.codes(model.shap.contributions(x)[:, :-1], x, towards, 4)
    exact = np.asarray(model.booster.predict(x, pred_contrib=True))[:, :-1]
    ref = model.codes.codes(exact, x, towards, 4)
    same = [{c.code for c in a} == {c.code for c in b} for a, b in zip(ours, ref, strict=True)]
    assert len(x) > 300 and all(ours)  # every refusal has codes
    assert sum(same) == len(same)
