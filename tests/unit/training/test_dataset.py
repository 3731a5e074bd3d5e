"""training.dataset: reading a feature directory, and a clear error for every kind of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from training.dataset import load_labelled
from training.exceptions import FeatureTableError


def _rewrite(feature_dir: Path, fn) -> None:  # type: ignore[no-untyped-def]
    path = feature_dir / "features.parquet"
    fn(pl.read_parquet(path)).write_parquet(path)


def test_reads_labelled_rows_as_float32_in_schema_order(make_feature_dir) -> None:  # type: ignore[no-untyped-def]
    feature_dir = make_feature_dir(n_rows=300, seed=2)
    table = load_labelled(feature_dir)
    frame = pl.read_parquet(feature_dir / "features.parquet")
    labelled = frame.filter(pl.col("IS_TRAIN")).sort("SK_ID_CURR")
    assert table.x.dtype == np.float32 and table.x.shape == (300, len(table.schema))
    assert np.array_equal(table.ids, labelled["SK_ID_CURR"].to_numpy())
    assert np.array_equal(table.y, labelled["TARGET"].to_numpy())
    col = table.schema.names.index("EXT_SOURCE_1")
    expected = labelled["EXT_SOURCE_1"].to_numpy()  # nulls → NaN
    assert np.array_equal(table.x[:, col], expected.astype(np.float32), equal_nan=True)
    assert np.isnan(table.x[:, col]).any()
    assert len(table.fingerprint) == 64


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: shutil.rmtree(d), "feature directory not found"),
        (lambda d: (d / "features.parquet").unlink(), r"features\.parquet: file not found"),
        (lambda d: (d / "feature_schema.json").unlink(), r"feature_schema\.json: file not found"),
        (lambda d: (d / "feature_schema.json").write_text("{}"), "invalid feature schema"),
        (lambda d: (d / "features.parquet").write_text("not parquet"), "not a readable parquet"),
        (lambda d: _rewrite(d, lambda f: f.drop("AMT_CREDIT")), "missing column 'AMT_CREDIT'"),
        (lambda d: _rewrite(d, lambda f: f.drop("TARGET")), "missing column 'TARGET'"),
        (
            lambda d: _rewrite(d, lambda f: f.with_columns(pl.lit(None, pl.Int8).alias("TARGET"))),
            "no labelled rows",
        ),
        (
            lambda d: _rewrite(d, lambda f: f.with_columns(pl.col("TARGET") * 0)),
            "single class",
        ),
        (
            lambda d: _rewrite(d, lambda f: f.with_columns(pl.col("TARGET") * 2)),
            "must be 0/1, got 2 for SK_ID_CURR=",
        ),
    ],
)
def test_bad_feature_directories_are_clear_errors(make_feature_dir, breakage, message: str) -> None:  # type: ignore[no-untyped-def]
    feature_dir = make_feature_dir(n_rows=200)
    breakage(feature_dir)
    with pytest.raises(FeatureTableError, match=message):
        load_labelled(feature_dir)
