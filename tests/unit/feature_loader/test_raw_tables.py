"""feature_loader.raw_tables: file lookup, header checks and dtypes of the eight raw files."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from feature_loader.exceptions import MissingColumnError, MissingFileError, RawDataError
from feature_loader.raw_tables import (
    APPLICATION_TEST,
    APPLICATION_TRAIN,
    BUREAU_BALANCE,
    RAW_TABLES,
    find_file,
    read_header,
    scan_table,
)


def test_spec_matches_the_real_sample_headers(sample_dir: Path) -> None:
    for table in RAW_TABLES:
        path = find_file(sample_dir, table)
        assert path is not None, table.name
        assert read_header(path) == list(table.columns), table.name


def test_only_application_tables_are_required() -> None:
    assert {t.name for t in RAW_TABLES if t.required} == {"application_train", "application_test"}
    assert len(RAW_TABLES) == 8


def test_reads_csv_and_csv_gz_with_spec_dtypes(tmp_path: Path) -> None:
    text = "SK_ID_BUREAU,MONTHS_BALANCE,STATUS\n5,-1,C\n6,,1\n"
    with gzip.open(tmp_path / "bureau_balance.csv.gz", "wt") as fh:
        fh.write(text)
    scanned = scan_table(tmp_path, BUREAU_BALANCE)
    assert scanned is not None and scanned[1].name == "bureau_balance.csv.gz"
    df = scanned[0].collect()
    assert df.schema == pl.Schema(
        {"SK_ID_BUREAU": pl.Int64, "MONTHS_BALANCE": pl.Float64, "STATUS": pl.String}
    )
    assert df["MONTHS_BALANCE"].to_list() == [-1.0, None]
    (tmp_path / "bureau_balance.csv").write_text(text.replace("5,-1,C", "7,-2,X"))
    scanned = scan_table(tmp_path, BUREAU_BALANCE, ["SK_ID_BUREAU"])
    assert scanned is not None and scanned[1].name == "bureau_balance.csv"  # plain CSV preferred
    assert scanned[0].collect()["SK_ID_BUREAU"].to_list() == [7, 6]


def test_absent_optional_table_is_none_and_required_one_an_error(tmp_path: Path) -> None:
    assert scan_table(tmp_path, BUREAU_BALANCE) is None
    with pytest.raises(MissingFileError, match=r"application_test\.csv: required file not found"):
        scan_table(tmp_path, APPLICATION_TEST)


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    (tmp_path / "application_train.csv").write_text("SK_ID_CURR,AMT_CREDIT\n1,2\n")
    with pytest.raises(MissingColumnError) as info:
        scan_table(tmp_path, APPLICATION_TRAIN, ["SK_ID_CURR", "TARGET", "AMT_CREDIT", "DAYS_BIRTH"])
    message = str(info.value)
    assert "application_train.csv: required column TARGET is missing" in message
    assert "DAYS_BIRTH" in message and "\n" not in message


@pytest.mark.parametrize("content", [b"", b"\x1f\x8b\x08 definitely not gzip"])
def test_empty_or_corrupt_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bureau_balance.csv.gz").write_bytes(content)
    with pytest.raises(RawDataError, match=r"bureau_balance\.csv\.gz: not a readable CSV file"):
        scan_table(tmp_path, BUREAU_BALANCE)
