"""Committed JSON Schemas equal what the models generate (regenerate: python -m schemas.export)."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas import export
from schemas.events import APPLICATION_FIELDS


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
    assert app["$id"].endswith("/v2") and set(APPLICATION_FIELDS) <= set(app["properties"])
    employed = app["properties"]["DAYS_EMPLOYED"]  # a range and the source's code
    assert {"type": "integer", "minimum": -54790, "maximum": 0} in employed["anyOf"]
    assert {"const": 365243} in employed["anyOf"]
    assert app["properties"]["EXT_SOURCE_1"]["anyOf"][0] == {"maximum": 1.0, "minimum": 0.0, "type": "number"}
    assert "Maternity leave" in app["properties"]["NAME_INCOME_TYPE"]["description"]
    decision = docs["decision.schema.json"]
    assert decision["$id"].endswith("/v2") and decision["properties"]["schema_version"]["const"] == 2
    assert {"decision", "probability_default", "score", "latency", "model_version"} <= set(
        decision["required"]
    )
    assert {"reason_codes", "rules", "policy_version", "review"} <= set(decision["properties"])
    assert set(decision["$defs"]["DecisionLabel"]["enum"]) == {"ACCORD", "REFUS", "REFER"}
    assert {"reviewer", "reason", "reviewed_at"} <= set(decision["$defs"]["Review"]["required"])
    dead = docs["dead_letter.schema.json"]
    assert "non_finite" in dead["$defs"]["ErrorKind"]["enum"]


def test_cli_check_exit_codes() -> None:
    assert export.main(["--check"]) == 0
    assert export.main(["--bogus"]) == 2
