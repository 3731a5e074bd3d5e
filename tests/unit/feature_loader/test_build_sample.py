"""The feature build on the real Home Credit sample (skips when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from feature_loader import application
from feature_loader.build import BUILD_INFO_FILE, FEATURES_FILE, SCHEMA_FILE, BuildResult, build_features
from feature_loader.derived import DERIVED, apply_derived
from feature_loader.feature_schema import FeatureSchema

TRAIN_ROWS, TEST_ROWS = 17_104, 48_744


@pytest.fixture(scope="module")
def built(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, pl.DataFrame]:
    out = tmp_path_factory.mktemp("features")
    result = build_features(sample_dir, out)
    return result, pl.read_parquet(out / FEATURES_FILE)


def test_one_row_per_client_with_target_and_split(
    built: tuple[BuildResult, pl.DataFrame], sample_dir: Path
) -> None:
    result, df = built
    assert df.height == TRAIN_ROWS + TEST_ROWS == result.rows
    assert df["SK_ID_CURR"].n_unique() == df.height
    assert (result.train_rows, result.test_rows) == (TRAIN_ROWS, TEST_ROWS)
    train = pl.read_csv(sample_dir / "application_train.csv.gz", columns=["SK_ID_CURR", "TARGET"])
    joined = train.join(df.select("SK_ID_CURR", pl.col("TARGET").alias("BUILT"), "IS_TRAIN"), on="SK_ID_CURR")
    assert joined.height == TRAIN_ROWS and joined["IS_TRAIN"].all()
    assert (joined["TARGET"] == joined["BUILT"]).all()
    test_ids = pl.read_csv(sample_dir / "application_test.csv.gz", columns=["SK_ID_CURR"])
    tested = df.join(test_ids, on="SK_ID_CURR")
    assert (
        tested.height == TEST_ROWS
        and not tested["IS_TRAIN"].any()
        and tested["TARGET"].null_count() == TEST_ROWS
    )


def test_features_are_finite_float32_in_schema_order(built: tuple[BuildResult, pl.DataFrame]) -> None:
    result, df = built
    schema = FeatureSchema.load(result.out_dir / SCHEMA_FILE)
    assert schema == result.schema and df.columns[3:] == list(schema.names)
    matrix = df.select(schema.names).to_numpy()
    assert matrix.dtype == np.float32 and not np.isinf(matrix).any()
    coverage = 1 - np.isnan(matrix).mean(axis=0)
    empty = [n for n, c in zip(schema.names, coverage, strict=True) if c == 0]
    assert not empty, f"features with no value on the real sample: {empty}"
    assert 200 <= len(schema) <= 300
    # the stored derived columns are exactly what the online scorer would compute
    again = matrix.copy()
    again[:, [schema.index[f.name] for f in schema.derived_fields]] = 0.0
    apply_derived(again, schema)
    assert (again.view(np.uint32) == matrix.view(np.uint32)).all()


def test_build_info(built: tuple[BuildResult, pl.DataFrame]) -> None:
    result, _ = built
    info = orjson.loads((result.out_dir / BUILD_INFO_FILE).read_bytes())
    assert info["schema_version"] == result.schema.version
    event, derived = len(application.FEATURES), len(DERIVED)
    assert info["features_by_source"] == {
        "event": event,
        "cached": len(result.schema) - event - derived,
        "derived": derived,
    }
    assert all(f["present"] for f in info["input_fingerprint"]["files"].values())
    assert info["warnings"] == []


def write_half(sample_dir: Path, out: Path, keep: pl.Expr) -> Path:
    """The sample's application tables restricted to the clients ``keep`` selects, related tables as-is."""
    out.mkdir()
    for name in ("application_train", "application_test"):
        pl.read_csv(sample_dir / f"{name}.csv.gz", infer_schema=False).filter(keep).write_csv(
            out / f"{name}.csv"
        )
    for path in sample_dir.glob("*.csv.gz"):
        if not path.name.startswith("application_"):
            (out / path.name).symlink_to(path)
    return out


def test_disjoint_halves_give_the_same_schema(
    built: tuple[BuildResult, pl.DataFrame], sample_dir: Path, tmp_path: Path
) -> None:
    """Builds on two disjoint halves of the real clients: same schema version, same column order,
    same level indices — also for a level one half never sees."""
    whole, whole_df = built
    even = pl.col("SK_ID_CURR").cast(pl.Int64) % 2 == 0
    halves = [write_half(sample_dir, tmp_path / n, keep) for n, keep in (("even", even), ("odd", ~even))]
    results = [build_features(h, tmp_path / f"out-{h.name}") for h in halves]
    assert results[0].rows + results[1].rows == whole.rows and min(r.rows for r in results) > 0
    assert results[0].schema.version == results[1].schema.version == whole.schema.version
    whole_json = (whole.out_dir / SCHEMA_FILE).read_bytes()
    assert [(r.out_dir / SCHEMA_FILE).read_bytes() for r in results] == [whole_json, whole_json]
    frames = [pl.read_parquet(r.out_dir / FEATURES_FILE) for r in results]
    assert frames[0].columns == frames[1].columns == whole_df.columns
    # a level present in one half only keeps its index: the real sample has one "Maternity leave"
    levels = whole.schema.field("NAME_INCOME_TYPE").categories or ()
    index = float(levels.index("Maternity leave"))
    assert sorted(int((f["NAME_INCOME_TYPE"] == index).sum()) for f in frames) == [0, 1]
    for f in frames:  # each client's row is the one of the whole build, bit for bit
        same = whole_df.join(f.select("SK_ID_CURR"), on="SK_ID_CURR", how="semi").sort("SK_ID_CURR")
        names = list(whole.schema.names)
        assert same.select(names).to_numpy().view(np.uint32).tolist() == (
            f.sort("SK_ID_CURR").select(names).to_numpy().view(np.uint32).tolist()
        )
