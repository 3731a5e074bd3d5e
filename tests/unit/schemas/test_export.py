"""Committed JSON Schemas equal what the models generate (regenerate: python -m schemas.export)."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas import export


def test_committed_json_schemas_are_up_to_date() -> None:
    stale = export.stale_files()
    assert stale == [], f"stale {stale}: run `uv run python -m schemas.export`"


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    export.write(tmp_path)
    assert export.stale_files(tmp_path) == []
    (tmp_path / "decision.schema.json").write_bytes(b"{}")
    assert export.stale_files(tmp_path) == ["decision.schema.json"]


def test_schemas_describe_the_contract() -> None:
    docs = {name: orjson.loads(data) for name, data in export.generate().items()}
    app = docs["loan_application.schema.json"]
    assert app["required"] == ["sk_id_curr"]
    assert {"AMT_CREDIT", "NAME_CONTRACT_TYPE", "event_time", "schema_version"} <= set(app["properties"])
    decision = docs["decision.schema.json"]
    assert {"decision", "probability_default", "score", "reasons", "latency", "model_version"} <= set(
        decision["required"]
    )
    assert set(decision["$defs"]["DecisionLabel"]["enum"]) == {"ACCORD", "REFUS"}
    dead = docs["dead_letter.schema.json"]
    assert "non_finite" in dead["$defs"]["ErrorKind"]["enum"]


def test_cli_check_exit_codes() -> None:
    assert export.main(["--check"]) == 0
    assert export.main(["--bogus"]) == 2
