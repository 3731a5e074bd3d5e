"""``credit-scorer data synth``: files, summary table and exit code 2 with a one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from credit_scorer.cli import app
from synthetic_data.spec import TABLES


def test_synth_writes_compressed_files_and_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["data", "synth", "--out", str(tmp_path), "--scale", "0.001", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.csv.gz" for t in TABLES)
    assert "application_train.csv.gz" in result.output and "308" in result.output  # 307,511 x 0.001


def test_no_compress_writes_plain_csv(tmp_path: Path) -> None:
    args = ["data", "synth", "--out", str(tmp_path), "--scale", "0.001", "--no-compress", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.csv" for t in TABLES)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--scale", "0"], "scale"),
        (["--scale", "20"], "scale"),
        (["--scale", "nan"], "scale"),
        (["--seed", "-5"], "seed"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_output_file_instead_of_folder_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("")
    result = CliRunner().invoke(app, ["data", "synth", "--out", str(target), "--scale", "0.001"])
    assert result.exit_code == 2
    assert "file.txt" in result.output and "not a folder" in result.output
