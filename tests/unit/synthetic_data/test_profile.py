"""The profile behind the synthetic data: inverse-CDF knots, point masses, the committed JSON."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from credit_scorer.cli import app as root_app
from feature_loader.exceptions import MissingFileError
from synthetic_data.columns import joint_u, sample_column, values_from_u
from synthetic_data.exceptions import SynthError
from synthetic_data.profile import DEFAULT_PROFILE_PATH, build_profile, load_profile, profile_column
from synthetic_data.spec import TABLES


def test_point_masses_and_missing_rate_are_reproduced() -> None:
    rng = np.random.default_rng(0)
    real = np.where(rng.random(20_000) < 0.18, 365243.0, -rng.gamma(2.0, 1200.0, 20_000).round())
    real[rng.random(20_000) < 0.1] = np.nan
    prof = profile_column(pl.Series("DAYS_EMPLOYED", real, nan_to_null=True).cast(pl.Int64))
    assert prof["t"] == "i"
    drawn = sample_column(prof, 50_000, np.random.default_rng(1))
    observed = real[~np.isnan(real)]
    assert abs(np.isnan(drawn).mean() - 0.1) < 0.01
    kept = drawn[~np.isnan(drawn)]
    assert abs((kept == 365243).mean() - (observed == 365243).mean()) < 0.01
    # nothing is interpolated between the continuous part and the point mass
    assert not ((kept > 0) & (kept < 365243)).any()
    assert abs(np.median(kept[kept < 0]) - np.median(observed[observed < 0])) < 150


def test_levels_keep_their_frequencies() -> None:
    real = pl.Series(
        "NAME_CASH_LOAN_PURPOSE", ["XAP"] * 550 + ["XNA"] * 400 + ["Repairs"] * 50 + [None] * 100
    )
    prof = profile_column(real)
    idx = sample_column(prof, 40_000, np.random.default_rng(2))
    levels = np.array(prof["levels"])
    assert abs((idx == -1).mean() - 100 / 1100) < 0.01
    kept = levels[idx[idx >= 0]]
    assert abs((kept == "XAP").mean() - 0.55) < 0.01
    assert abs((kept == "Repairs").mean() - 0.05) < 0.01


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=300),
    u=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50),
)
def test_inverse_cdf_is_monotone_and_stays_in_range(values: list[float], u: list[float]) -> None:
    prof = profile_column(pl.Series("x", values, dtype=pl.Float64))
    grid = np.sort(np.asarray(u))
    drawn = values_from_u(prof, grid)
    assert np.all(np.diff(drawn) >= 0)
    # knots keep 6 significant digits (small JSON), values are rounded to the profiled decimals
    tol = 10.0 ** -prof["dec"] + 1e-5 * max(1.0, max(abs(v) for v in values))
    assert drawn.min() >= min(values) - tol and drawn.max() <= max(values) + tol


def test_joint_uniforms_follow_risk_and_anchor_but_stay_uniform() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal(20_000)
    table = {"coupled": {"AMT_ANNUITY": {"anchor": "AMT_CREDIT", "rho": 0.8}}}
    u = joint_u(rng, 20_000, table, {"EXT_SOURCE_2": (-0.5, z), "AMT_CREDIT": (0.3, z)})
    assert set(u) == {"EXT_SOURCE_2", "AMT_CREDIT", "AMT_ANNUITY"}
    for values in u.values():  # marginals stay uniform, so the profiled distributions are kept
        assert abs(values.mean() - 0.5) < 0.01 and abs(np.mean(values < 0.1) - 0.1) < 0.01
    assert np.corrcoef(z, u["EXT_SOURCE_2"])[0, 1] < -0.4
    assert np.corrcoef(z, u["AMT_CREDIT"])[0, 1] > 0.2
    assert np.corrcoef(u["AMT_CREDIT"], u["AMT_ANNUITY"])[0, 1] > 0.7


def test_committed_profile_is_small_and_complete() -> None:
    profile = load_profile()
    assert DEFAULT_PROFILE_PATH.stat().st_size < 400_000
    assert set(profile["file_columns"]) == set(TABLES)
    assert 0.06 < profile["signals"]["target_rate"] < 0.10


def test_profile_of_the_real_sample_matches_the_committed_one(sample_dir: Path) -> None:
    fresh = build_profile(sample_dir)
    committed = load_profile()
    assert fresh["file_columns"] == committed["file_columns"]
    assert fresh["signals"] == pytest.approx(committed["signals"], rel=1e-4)
    for name, table in fresh["tables"].items():  # same parsed dtype of every real column
        assert {c: p["t"] for c, p in table["base"].items()} == {
            c: p["t"] for c, p in committed["tables"][name]["base"].items()
        }, name
    days = fresh["tables"]["application"]["group"]
    assert days["by"]["Y"]["DAYS_EMPLOYED"]["x"] == [365243.0, 365243.0]
    assert days["by"]["Y"]["ORGANIZATION_TYPE"]["levels"] == ["XNA"]


def test_missing_sample_file_is_named(tmp_path: Path, sample_dir: Path) -> None:
    for name in ("application_train.csv.gz", "application_test.csv.gz"):
        shutil.copy(sample_dir / name, tmp_path / name)
    with pytest.raises(MissingFileError, match=r"bureau\.csv\.gz"):
        build_profile(tmp_path)


def test_profile_cli_reports_a_missing_folder_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        root_app, ["data", "profile", "--sample", str(tmp_path / "nope"), "--out", str(tmp_path / "p.json")]
    )
    assert result.exit_code == 2
    assert "nope" in result.output and "sample folder not found" in result.output
    assert not (tmp_path / "p.json").exists()


def test_load_profile_rejects_a_foreign_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"format": 99}')
    with pytest.raises(SynthError, match="format"):
        load_profile(path)
