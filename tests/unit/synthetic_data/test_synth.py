"""Synthetic Home Credit data: schema, determinism, key integrity, quirks and a learnable TARGET."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthetic_data.exceptions import SynthError
from synthetic_data.profile import load_profile
from synthetic_data.spec import TABLES
from synthetic_data.synth import synthesize

SCALE = 0.01  # 3,075 train + 487 test applicants, ~0.6M rows in all: about a second


def _read(folder: Path, table: str) -> pl.DataFrame:
    path = folder / f"{table}.csv"
    return pl.read_csv(path if path.exists() else folder / f"{table}.csv.gz", infer_schema_length=None)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    summary = synthesize(out, scale=SCALE, seed=7, compress=False)
    assert [f.table for f in summary.files] == list(TABLES)
    return out


@pytest.fixture(scope="module")
def tables(synth_dir: Path) -> dict[str, pl.DataFrame]:
    return {t: _read(synth_dir, t) for t in TABLES}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_writes_all_eight_files_at_the_requested_scale(
    synth_dir: Path, tables: dict[str, pl.DataFrame]
) -> None:
    assert sorted(p.name for p in synth_dir.iterdir()) == sorted(f"{t}.csv" for t in TABLES)
    assert tables["application_train"].height == 3075
    assert tables["application_test"].height == 487
    # per-client volumes in proportion to the full files (1.7M bureau, 27M bureau_balance, 1.7M previous,
    # 10M POS_CASH, 13.6M installments, 3.8M credit-card rows for 356k clients)
    expected = {
        "bureau": 1.72e6,
        "bureau_balance": 27.3e6,
        "previous_application": 1.67e6,
        "POS_CASH_balance": 10.0e6,
        "installments_payments": 13.6e6,
        "credit_card_balance": 3.84e6,
    }
    for table, full in expected.items():
        assert 0.7 * full * SCALE < tables[table].height < 1.3 * full * SCALE, table


def test_columns_match_the_real_sample(tables: dict[str, pl.DataFrame], sample_dir: Path) -> None:
    for table in TABLES:
        header = pl.read_csv(sample_dir / f"{table}.csv.gz", n_rows=0, infer_schema=False).columns
        assert tables[table].columns == header, table


def test_dtypes_parse_as_the_profiled_real_ones(tables: dict[str, pl.DataFrame]) -> None:
    """The profile records how each real column parses (checked in test_profile.py)."""
    kinds = {pl.Int64: "i", pl.Float64: "f", pl.String: "s"}
    profile = load_profile()
    for table in TABLES:
        profiled = profile["tables"]["application" if table.startswith("application") else table]["base"]
        for col, prof in profiled.items():
            if col in tables[table].columns:
                assert kinds.get(tables[table][col].dtype) == prof["t"], (
                    table,
                    col,
                    tables[table][col].dtype,
                )
        for key in [c for c in tables[table].columns if c.startswith("SK_ID_") or c == "TARGET"]:
            assert tables[table][key].dtype == pl.Int64, (table, key)


def test_columns_follow_the_committed_profile(tables: dict[str, pl.DataFrame]) -> None:
    profile = load_profile()
    for table in TABLES:
        assert tables[table].columns == profile["file_columns"][table]
    assert "TARGET" not in tables["application_test"].columns
    assert tables["application_train"].columns[:2] == ["SK_ID_CURR", "TARGET"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = synthesize(tmp_path / "a", scale=0.002, seed=11, compress=True)
    synthesize(tmp_path / "b", scale=0.002, seed=11, compress=True)
    synthesize(tmp_path / "c", scale=0.002, seed=12, compress=True)
    assert all(f.path.name.endswith(".csv.gz") for f in first.files)
    a, b, c = (_digests(tmp_path / d) for d in "abc")
    assert a == b
    assert all(a[name] != c[name] for name in a)
    assert not list((tmp_path / "a").glob("*.part"))


def test_keys_are_consistent_across_tables(tables: dict[str, pl.DataFrame]) -> None:
    train, test = tables["application_train"], tables["application_test"]
    assert train["SK_ID_CURR"].is_unique().all() and test["SK_ID_CURR"].is_unique().all()
    assert not set(train["SK_ID_CURR"]) & set(test["SK_ID_CURR"])
    clients = set(train["SK_ID_CURR"]) | set(test["SK_ID_CURR"])

    bureau, bb = tables["bureau"], tables["bureau_balance"]
    assert bureau["SK_ID_BUREAU"].is_unique().all()
    assert set(bureau["SK_ID_CURR"]) <= clients
    assert set(bb["SK_ID_BUREAU"]) <= set(bureau["SK_ID_BUREAU"])
    assert bb.select(pl.struct("SK_ID_BUREAU", "MONTHS_BALANCE").is_unique().all()).item()

    prev = tables["previous_application"]
    assert prev["SK_ID_PREV"].is_unique().all()
    owner = dict(zip(prev["SK_ID_PREV"], prev["SK_ID_CURR"], strict=True))
    for table in ("POS_CASH_balance", "installments_payments", "credit_card_balance"):
        rows = tables[table]
        assert set(rows["SK_ID_PREV"]) <= owner.keys(), table
        pairs = rows.select("SK_ID_PREV", "SK_ID_CURR").unique()
        assert all(owner[p] == c for p, c in pairs.iter_rows()), (
            f"{table}: SK_ID_CURR differs from previous_application"
        )
        approved = prev.filter(pl.col("SK_ID_PREV").is_in(rows["SK_ID_PREV"].unique().implode()))
        assert (approved["NAME_CONTRACT_STATUS"] == "Approved").all(), table
    for table in ("bureau_balance", "POS_CASH_balance", "credit_card_balance"):
        assert (tables[table]["MONTHS_BALANCE"] <= 0).all(), table
    assert (tables["installments_payments"]["DAYS_INSTALMENT"] < 0).all()

    # some clients have no history at all in a table, most have some
    for table in ("bureau", "previous_application"):
        share = tables[table]["SK_ID_CURR"].n_unique() / len(clients)
        assert 0.75 < share < 0.99, (table, share)


def test_quirks_and_missing_rates_follow_the_profile(tables: dict[str, pl.DataFrame]) -> None:
    profile = load_profile()
    app = profile["tables"]["application"]
    train = tables["application_train"]
    pensioner = train["DAYS_EMPLOYED"] == 365243
    expected = app["group"]["p"][app["group"]["levels"].index("Y")]
    assert abs(pensioner.mean() - expected) < 0.04
    assert (train.filter(pensioner)["ORGANIZATION_TYPE"] == "XNA").all()
    assert train.filter(pensioner)["OCCUPATION_TYPE"].null_count() == int(pensioner.sum())
    assert (train.filter(~pensioner)["ORGANIZATION_TYPE"] != "XNA").all()
    assert (train.filter(~pensioner)["DAYS_EMPLOYED"] <= 0).all()

    prev = tables["previous_application"]
    assert {"XAP", "XNA"} <= set(prev["NAME_CASH_LOAN_PURPOSE"].drop_nulls())
    assert "XAP" in set(prev["CODE_REJECT_REASON"])
    assert (prev["DAYS_FIRST_DRAWING"] == 365243.0).sum() > 0.3 * prev.height
    assert prev.filter(pl.col("NAME_CONTRACT_STATUS") == "Refused")["DAYS_FIRST_DUE"].null_count() > 0

    # missing rates close to the profiled ones (columns the generator does not structure)
    for name, table in (("application", train), ("bureau", tables["bureau"]), ("previous_application", prev)):
        base = profile["tables"][name]["base"]
        grouped = {c for by in profile["tables"][name].get("group", {}).get("by", {}).values() for c in by}
        for col, prof in base.items():
            if col in table.columns and col not in grouped and col != "OWN_CAR_AGE":
                got = table[col].null_count() / table.height
                assert abs(got - prof["miss"]) < 0.04, (name, col, got, prof["miss"])
    test_miss = app["test_miss"]["EXT_SOURCE_1"]
    assert abs(tables["application_test"]["EXT_SOURCE_1"].null_count() / 487 - test_miss) < 0.07


def test_housing_columns_are_missing_together(tables: dict[str, pl.DataFrame]) -> None:
    train = tables["application_train"]
    housing = [c for c in train.columns if c.endswith(("_AVG", "_MODE", "_MEDI"))]
    assert len(housing) == 47
    missing = train.select(pl.col(housing).is_null()).to_numpy()
    # nested: the rows missing every housing column are exactly as many as the least-missing column's
    assert missing.all(axis=1).sum() == missing.sum(axis=0).min()
    requests = train.select(pl.col("^AMT_REQ_CREDIT_BUREAU_.*$").is_null()).to_numpy()
    assert (requests.all(axis=1) == requests.any(axis=1)).all()


def test_amounts_are_consistent(tables: dict[str, pl.DataFrame]) -> None:
    train = tables["application_train"]
    assert ((train["AMT_ANNUITY"] / train["AMT_CREDIT"]).drop_nulls() < 0.2).all()
    assert (
        train["CNT_FAM_MEMBERS"].drop_nulls()
        >= train["CNT_CHILDREN"].filter(train["CNT_FAM_MEMBERS"].is_not_null()) + 1
    ).all()
    owns_car = train["FLAG_OWN_CAR"] == "Y"
    assert train.filter(~owns_car)["OWN_CAR_AGE"].null_count() == int((~owns_car).sum())


def test_positive_rate_is_about_eight_percent(tables: dict[str, pl.DataFrame]) -> None:
    train = tables["application_train"]
    rate = train["TARGET"].sum() / train.height
    assert 0.065 < rate < 0.10
    assert set(tables["application_train"]["TARGET"].unique()) == {0, 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": 11.0}, "scale"),
        ({"scale": 1e-7}, "scale"),
        ({"scale": True}, "scale"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_raise_synth_error(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"scale": 0.001, "seed": 0} | kwargs
    with pytest.raises(SynthError, match=message):
        synthesize(tmp_path / "out", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_output_path_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "not-a-folder"
    target.write_text("x")
    with pytest.raises(SynthError, match="not-a-folder"):
        synthesize(target, scale=0.001, seed=0)


def test_unreadable_profile_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "profile.json"
    bad.write_text("{not json")
    with pytest.raises(SynthError, match=r"profile\.json"):
        synthesize(tmp_path / "out", scale=0.001, seed=0, profile_path=bad)


def test_ids_continue_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several chunks, one of them holding both train and test applicants: ids stay dense and unique."""
    import synthetic_data.synth as synth_module

    monkeypatch.setattr(synth_module, "CHUNK_CLIENTS", 700)
    summary = synthesize(tmp_path, scale=0.005, seed=1)  # 1,538 + 244 clients → 3 chunks of 700
    ids = pl.read_csv(summary.files[0].path, columns=["SK_ID_CURR"])["SK_ID_CURR"].to_numpy()
    assert np.array_equal(ids, 100_002 + np.arange(summary.n_train))
    test_ids = pl.read_csv(summary.files[1].path, columns=["SK_ID_CURR"])["SK_ID_CURR"].to_numpy()
    assert np.array_equal(test_ids, 100_002 + summary.n_train + np.arange(summary.n_test))
    for table, key in (("previous_application", "SK_ID_PREV"), ("bureau", "SK_ID_BUREAU")):
        keys = pl.read_csv(tmp_path / f"{table}.csv", columns=[key])[key]
        assert keys.is_unique().all() and keys.len() == summary.rows(table)
    header_rows = pl.read_csv(tmp_path / "application_test.csv", infer_schema=False)["SK_ID_CURR"]
    assert not (header_rows == "SK_ID_CURR").any()  # one header even if a chunk has no test applicant
