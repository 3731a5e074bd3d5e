"""training.honest_split on the real sample: held-out applicants become new clients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from feature_loader.build import build_features
from training.baseline import load_applications
from training.honest_split import HonestSplit, split_raw
from training.split import stratified_holdout


@pytest.fixture(scope="module")
def split(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> HonestSplit:
    return split_raw(sample_dir, tmp_path_factory.mktemp("honest"), fraction=0.2, seed=0)


def ids_of(path: Path) -> set[int]:
    return set(pl.read_csv(path, columns=["SK_ID_CURR"])["SK_ID_CURR"].to_list())


def test_the_held_out_applicants_are_the_training_split_and_none_of_their_rows_trains(
    split: HonestSplit, sample_dir: Path
) -> None:
    raw = load_applications(sample_dir)  # the raw-column baseline's view: same clients, same split
    held = set(raw.ids[stratified_holdout(raw.ids, raw.y, 0.2, 0)].tolist())
    labels = pl.read_csv(split.labels)
    assert set(labels["SK_ID_CURR"].to_list()) == held and split.holdout_clients == len(held)
    assert int(labels["TARGET"].sum()) == split.holdout_positives > 0
    for table in ("application_train", "bureau", "previous_application", "installments_payments"):
        assert not ids_of(split.train_raw / f"{table}.csv") & held, table
        assert ids_of(split.holdout_raw / f"{table}.csv") <= held, table
    bureau_held = set(pl.read_csv(split.holdout_raw / "bureau.csv")["SK_ID_BUREAU"].to_list())
    balance_train = set(pl.read_csv(split.train_raw / "bureau_balance.csv")["SK_ID_BUREAU"].to_list())
    assert bureau_held and not bureau_held & balance_train
    # their application arrives as a new applicant's: no TARGET, not in application_train
    test_header = pl.read_csv(split.holdout_raw / "application_test.csv", n_rows=0).columns
    assert "TARGET" not in test_header and ids_of(split.holdout_raw / "application_test.csv") == held
    assert pl.read_csv(split.holdout_raw / "application_train.csv").height == 0


def test_both_parts_build_with_the_same_schema(split: HonestSplit, tmp_path: Path) -> None:
    train = build_features(split.train_raw, tmp_path / "train")
    holdout = build_features(split.holdout_raw, tmp_path / "holdout")
    assert train.schema.version == holdout.schema.version
    rows = pl.read_parquet(tmp_path / "holdout" / "features.parquet", columns=["SK_ID_CURR", "TARGET"])
    assert rows["TARGET"].null_count() == rows.height == split.holdout_clients
    train_ids = pl.read_parquet(tmp_path / "train" / "features.parquet", columns=["SK_ID_CURR"])
    assert not np.isin(rows["SK_ID_CURR"].to_numpy(), train_ids["SK_ID_CURR"].to_numpy()).any()
