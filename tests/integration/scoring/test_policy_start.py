"""A bad policy file stops the start of the worker, the API and replay: exit code 2 and one line naming
the file, the rule and the field (each command reads the policy before any broker or Redis call)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scoring.policy_file import DEFAULT_POLICY_FILE

COMMANDS = {
    "worker": ["stream", "worker"],
    "api": ["api", "serve"],
    "replay": ["replay", "run", "--no-progress", "--out", "{out}", "--model", "{model}"],
}


def bad_policies(tmp_path: Path) -> list[tuple[Path, str]]:
    """(file, what the one line must say): a field outside its type, then a rule on a missing feature."""
    doc = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    doc["knockouts"][3]["op"] = "=="
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(doc), encoding="utf-8")
    doc["knockouts"][3]["op"] = ">"
    doc["knockouts"][3]["per"] = "AMT_INCOME"
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return [
        (typo, f"error: policy file {typo}: rule KO_ANNUITY_INCOME (knockouts.3) field op: Input should be"),
        (unknown, "error: policy rule KO_ANNUITY_INCOME: per 'AMT_INCOME' is not a feature of the model"),
    ]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_policy_file_stops_the_start_in_one_line(
    command: str, small_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from credit_scorer.cli import app
    from credit_scorer.settings import get_settings

    monkeypatch.setenv("CREDIT_SCORER_MODEL__PATH", str(small_model_dir))
    monkeypatch.setenv("CREDIT_SCORER_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    args = [a.format(out=tmp_path / "out", model=small_model_dir) for a in COMMANDS[command]]
    for path, message in bad_policies(tmp_path):
        if command == "api" and "not a feature" in message:
            continue  # the API checks the file at the command; the model's features at its start
        monkeypatch.setenv("CREDIT_SCORER_POLICY__PATH", str(path))
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, args)
        finally:
            get_settings.cache_clear()
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, result.output
        assert len(lines) == 1 and lines[0].startswith(message), result.output
