"""The application-form contract generator: the committed file is what it makes from the real sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest

from devtools.application_contract import CONTRACT_FILE, ContractError, generate, main
from schemas.application_form import FORM_COLUMNS, LEVELS

DESCRIPTIONS = "HomeCredit_columns_description.csv"


def test_the_committed_contract_is_generated_from_the_real_sample(sample_dir: Path) -> None:
    committed = orjson.loads(CONTRACT_FILE.read_bytes())
    assert generate(sample_dir, committed) == committed
    assert generate(sample_dir) == committed  # no level comes from the previous file alone
    assert [c.name for c in FORM_COLUMNS] == [c["name"] for c in committed["columns"]]
    assert len(FORM_COLUMNS) == 120 and "XNA" not in LEVELS["CODE_GENDER"]


def tiny_raw(sample_dir: Path, tmp_path: Path, **changes: object) -> Path:
    """The sample's first rows of each application file, with ``changes`` in the first train row."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(sample_dir / DESCRIPTIONS, raw / DESCRIPTIONS)
    for name in ("application_train", "application_test"):
        frame = pl.read_csv(sample_dir / f"{name}.csv.gz", n_rows=50, infer_schema_length=None)
        if name == "application_train":
            for column, value in changes.items():
                cells = frame[column].cast(pl.String).to_list()
                frame = frame.with_columns(pl.Series(column, [str(value), *cells[1:]]))
        frame.write_csv(raw / f"{name}.csv")
    return raw


def test_a_value_outside_its_physical_range_stops_the_generation(sample_dir: Path, tmp_path: Path) -> None:
    raw = tiny_raw(sample_dir, tmp_path, DAYS_BIRTH=120)
    with pytest.raises(
        ContractError, match=r"DAYS_BIRTH: value 120.0 outside its days before the application"
    ):
        generate(raw)
    assert main(["--raw", str(raw), "--out", str(tmp_path / "c.json")]) == 2
    assert not (tmp_path / "c.json").exists()


def test_levels_are_never_dropped_and_codes_are_kept(sample_dir: Path, tmp_path: Path) -> None:
    raw = tiny_raw(sample_dir, tmp_path, NAME_INCOME_TYPE="Astronaut", DAYS_EMPLOYED=365243)
    previous = orjson.loads(CONTRACT_FILE.read_bytes())
    contract = generate(raw, previous)
    columns = {c["name"]: c for c in contract["columns"]}
    income = columns["NAME_INCOME_TYPE"]["levels"]
    assert set(LEVELS["NAME_INCOME_TYPE"]) < set(income) and "Astronaut" in income  # a union, sorted
    assert income == sorted(income)
    assert columns["DAYS_EMPLOYED"]["codes"] == [365243]
    assert (columns["DAYS_EMPLOYED"]["min"], columns["DAYS_EMPLOYED"]["max"]) == (-54790, 0)
