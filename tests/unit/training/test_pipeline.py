"""training.train: the honest split, the calibration and the threshold on out-of-fold scores, the saved and
verified model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scoring.calibration import Calibrator
from scoring.model import load_model
from training.calibrate import expected_calibration_error, fit_calibration
from training.dataset import load_labelled
from training.evaluation import roc_auc
from training.reference import histogram
from training.split import stratified_holdout
from training.threshold import choose_threshold, confusion_at
from training.train import TrainConfig, TrainResult, train_model
from training.unknown_path import unknown_matrix

FAST = {"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20, "feature_fraction": 0.9}


@pytest.fixture(scope="module")
def trained(make_feature_dir, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult]:  # type: ignore[no-untyped-def]
    feature_dir = make_feature_dir(n_rows=1500, seed=7)
    # weighted then calibrated: the served scale differs from the booster's, so every check below
    # fails if a metric, the threshold or the reference were taken on the raw scores
    config = TrainConfig(
        folds=3,
        seed=7,
        max_rounds=200,
        early_stopping=20,
        params=FAST,
        imbalance=True,
        calibration="isotonic",
    )
    steps: list[str] = []
    result = train_model(feature_dir, tmp_path_factory.mktemp("models"), config, steps.append)
    assert len(steps) == config.steps()
    return feature_dir, result


def test_metrics_are_those_of_the_saved_model_on_the_held_out_rows(trained) -> None:  # type: ignore[no-untyped-def]
    feature_dir, result = trained
    card = result.card
    table = load_labelled(feature_dir)
    held = stratified_holdout(table.ids, table.y, 0.2, seed=7)
    assert card.training_data.holdout_rows == held.sum() == 300
    assert card.training_data.train_rows == (~held).sum()
    assert card.training_data.rows == 1500 and card.training_data.positives == table.positives
    # rescoring the held-out rows with the model *as loaded from disk* reproduces the card exactly
    model = load_model(result.model_dir, expected_schema=table.schema)
    p = model.predict(table.x[held])
    assert roc_auc(table.y[held], p) == card.metrics["auc"]
    assert confusion_at(table.y[held], p, card.threshold).as_dict() == card.confusion_matrix
    assert card.metrics["cost_at_threshold"] == 10 * card.confusion_matrix["fn"] + card.confusion_matrix["fp"]
    assert card.metrics["best_cost"] == choose_threshold(table.y[held], p).cost
    assert card.metrics["best_cost"] <= card.metrics["cost_at_threshold"]
    assert card.metrics["best_cost"] <= card.metrics["cost_at_0_5"]
    assert card.metrics["auc"] > 0.8  # the fixture data is learnable
    assert 0 < card.metrics["brier"] < 0.25


def test_threshold_is_chosen_on_out_of_fold_scores_of_the_training_part(trained) -> None:  # type: ignore[no-untyped-def]
    feature_dir, result = trained
    table = load_labelled(feature_dir)
    held = stratified_holdout(table.ids, table.y, 0.2, seed=7)
    assert result.cv.oof.shape == ((~held).sum(),)
    fitted = fit_calibration("isotonic", table.y[~held], result.cv.oof, "")
    assert (result.card.calibration.x, result.card.calibration.y) == (fitted.x, fitted.y)
    oof = Calibrator(result.card.calibration).apply(result.cv.oof)  # the threshold's scale: calibrated
    assert result.card.threshold == choose_threshold(table.y[~held], oof).threshold
    assert result.card.metrics["oof_cost_at_threshold"] == choose_threshold(table.y[~held], oof).cost
    assert result.card.params["n_estimators"] == result.cv.n_estimators == model_trees(result.model_dir)
    assert result.card.params["scale_pos_weight"] == pytest.approx(
        ((~held).sum() - table.y[~held].sum()) / table.y[~held].sum(), rel=1e-5
    )


def test_the_calibrated_probability_is_a_probability(trained) -> None:  # type: ignore[no-untyped-def]
    feature_dir, result = trained
    table = load_labelled(feature_dir)
    held = stratified_holdout(table.ids, table.y, 0.2, seed=7)
    model = load_model(result.model_dir)
    y, served, raw = table.y[held], model.predict(table.x[held]), model.predict_raw(table.x[held])
    m = result.card.metrics
    assert m["brier"] == pytest.approx(float(np.mean((served - y) ** 2)), abs=1e-12)
    assert m["ece"] == pytest.approx(expected_calibration_error(y, served), abs=1e-12)
    # weighted training shifts the raw scores up; the calibration brings them to the default rate
    assert raw.mean() > 1.3 * y.mean() and abs(served.mean() - y.mean()) < 0.03
    assert m["brier"] < float(np.mean((raw - y) ** 2)) and m["brier"] < m["brier_base_rate"]
    assert m["ece"] < expected_calibration_error(y, raw)
    assert m["log_loss"] > 0 and 0 < m["approval_rate"] < 1
    # the drift reference of the score is the served (calibrated) one, as the worker observes it
    assert result.card.reference is not None
    assert result.card.reference["score"] == histogram(served)


def test_the_unknown_client_path_is_measured_into_the_card(trained) -> None:  # type: ignore[no-untyped-def]
    feature_dir, result = trained
    table = load_labelled(feature_dir)
    held = stratified_holdout(table.ids, table.y, 0.2, seed=7)
    model = load_model(result.model_dir)
    path = result.card.unknown_client_path
    assert path is not None
    p_unknown = model.predict(unknown_matrix(table.x[held], table.schema))
    assert path.auc == roc_auc(table.y[held], p_unknown) == result.card.metrics["unknown_client_auc"]
    assert path.known_auc == result.card.metrics["auc"]
    # the fixture's risk is driven by cached EXT_SOURCE_*: without them the path is clearly weaker
    assert path.known_auc - path.auc > 0.02 and path.weak and path.why.startswith("weak")


def model_trees(model_dir: Path) -> int:
    return load_model(model_dir).booster.num_trees()


def test_card_plots_and_reference(trained) -> None:  # type: ignore[no-untyped-def]
    _, result = trained
    card = result.card
    assert card.model_version == result.model_dir.name
    assert card.model_version.split("-")[1] == card.model_sha256[:8]
    assert card.cost_matrix == {"fn": 10.0, "fp": 1.0}
    for name in ("roc.png", "cost_vs_threshold.png", "feature_importance.png", "reliability.png"):
        data = (result.model_dir / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert card.reference is not None
    top = list(card.reference["features"])
    gains = load_model(result.model_dir).booster.feature_importance("gain")
    names = list(card.features)
    assert top[0] == names[int(np.argmax(gains))]


def test_same_seed_same_model(make_feature_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feature_dir = make_feature_dir(n_rows=600, seed=1)
    config = TrainConfig(folds=2, seed=3, max_rounds=30, early_stopping=0, plots=False, params=FAST)
    a = train_model(feature_dir, tmp_path / "a", config)
    b = train_model(feature_dir, tmp_path / "b", config)
    assert a.card.model_sha256 == b.card.model_sha256
    # the default: unweighted, served as it is
    assert "scale_pos_weight" not in a.card.params and a.card.calibration.method == "identity"
    assert a.card.training_data.fingerprint == b.card.training_data.fingerprint


def test_the_card_carries_fairness_by_segment_at_the_threshold(trained) -> None:  # type: ignore[no-untyped-def]
    from scoring.fairness import fairness_report

    feature_dir, result = trained
    table = load_labelled(feature_dir)
    held = stratified_holdout(table.ids, table.y, 0.2, seed=7)
    card = result.card
    fairness = load_model(result.model_dir).card.fairness  # as saved on disk
    assert fairness is not None and fairness["threshold"] == card.threshold
    p = load_model(result.model_dir).predict(table.x[held])
    k = TrainConfig().fairness_min_group_decisions
    assert fairness["holdout"] == fairness_report(table.schema, table.x[held], p < card.threshold, p, k)
    oof = Calibrator(card.calibration).apply(result.cv.oof)
    expected_oof = fairness_report(table.schema, table.x[~held], oof < card.threshold, oof, k)
    assert fairness["out_of_fold"] == expected_oof
    # every family of the default schema is there, and the groups add up to the held-out approval rate
    gender = fairness["holdout"]["segments"]["gender"]
    assert [s["status"] for s in fairness["holdout"]["segments"].values()] == ["ok"] * 4
    approvals = sum(g["approvals"] for g in gender["groups"].values())
    assert approvals / 300 == pytest.approx(card.metrics["approval_rate"], abs=1e-12)
    assert (
        sum(g["decisions"] for g in fairness["out_of_fold"]["segments"]["age_band"]["groups"].values())
        == (~held).sum()
    )
