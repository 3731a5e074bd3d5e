"""`credit-scorer train …`: a run end to end, and one-line errors with exit code 2 on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from scoring.model import MODEL_FILE, load_model
from training.cli import app

runner = CliRunner()


def test_run_then_show(make_feature_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feature_dir = make_feature_dir(n_rows=800, seed=4)
    out = tmp_path / "models"
    args = ["run", "--features", str(feature_dir), "--out", str(out), "--no-register", "--no-plots"]
    result = runner.invoke(
        app,
        [*args, "--folds", "2", "--seed", "4", "--weighted", "--calibration", "platt"],
        env={"COLUMNS": "200"},  # rich wraps the table's cells at the terminal width
    )
    assert result.exit_code == 0, result.output
    (model_dir,) = out.iterdir()
    model = load_model(model_dir)
    assert model.card.params["folds"] == 2
    assert model.card.calibration.method == "platt" and model.card.params["scale_pos_weight"] > 1
    assert "platt: Brier" in result.stdout
    assert "held-out AUC" in result.stdout and model.model_version in result.stdout
    assert model.card.fairness is not None  # the printed report carries the card's ratios
    oof = model.card.fairness["out_of_fold"]["segments"]
    assert oof["gender"]["disparate_impact"] is not None  # 640 out-of-fold rows: F and M qualify
    assert f"gender {oof['gender']['disparate_impact']:.2f}" in result.stdout
    assert "disparate impact (held-out)" in result.stdout
    shown = runner.invoke(app, ["show", str(model_dir)])
    assert shown.exit_code == 0 and f"{model.card.metrics['auc']:.4f}" in shown.stdout


def test_missing_feature_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = runner.invoke(app, ["run", "--features", str(missing), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: ") and str(missing) in result.stderr
    assert not (tmp_path / "m").exists()


def test_feature_dir_without_labels_exits_2(make_feature_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    feature_dir = make_feature_dir(n_rows=100)
    path = feature_dir / "features.parquet"
    pl.read_parquet(path).with_columns(pl.lit(False).alias("IS_TRAIN")).write_parquet(path)
    result = runner.invoke(app, ["run", "--features", str(feature_dir), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "features.parquet: no labelled rows" in result.stderr


def test_show_refuses_a_tampered_model(small_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / small_model_dir.name
    shutil.copytree(small_model_dir, model_dir)
    with (model_dir / MODEL_FILE).open("a") as fh:
        fh.write("\n")
    result = runner.invoke(app, ["show", str(model_dir)])
    assert result.exit_code == 2 and "does not match the model card" in result.stderr


def test_baseline_without_raw_files_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["baseline", "--raw", str(tmp_path)])
    assert result.exit_code == 2 and "application_train" in result.stderr


def test_unknown_calibration_exits_2(make_feature_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feature_dir = make_feature_dir(n_rows=800, seed=4)
    args = ["run", "--features", str(feature_dir), "--out", str(tmp_path / "m"), "--calibration", "beta"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--calibration" in result.stderr and "'beta'" in result.stderr
    assert not (tmp_path / "m").exists()


def test_evaluate_without_raw_files_exits_2_with_one_line(tmp_path: Path) -> None:
    args = ["evaluate", "--raw", str(tmp_path / "raw"), "--work", str(tmp_path / "w"), "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert "application_train" in result.stderr and str(tmp_path / "raw") in result.stderr
