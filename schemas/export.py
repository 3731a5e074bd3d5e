"""Export the JSON Schemas of the event contracts into ``schemas/json/`` for upstream/downstream teams.

``python -m schemas.export`` writes them; ``python -m schemas.export --check`` exits 1 (naming the stale
file) when a committed file differs from what the models generate. A unit test runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from schemas.events import (
    APPLICATION_VERSION,
    DEAD_LETTER_VERSION,
    DECISION_VERSION,
    DeadLetter,
    Decision,
    LoanApplication,
)

JSON_DIR = Path(__file__).resolve().parent / "json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# file stem → (model, mode, contract version): producers send applications (validation form); we emit
# the others.
EXPORTS: dict[str, tuple[Any, str, int]] = {
    "loan_application": (LoanApplication, "validation", APPLICATION_VERSION),
    "decision": (Decision, "serialization", DECISION_VERSION),
    "dead_letter": (DeadLetter, "serialization", DEAD_LETTER_VERSION),
}


def generate() -> dict[str, bytes]:
    """File name → exact bytes of every exported schema."""
    out: dict[str, bytes] = {}
    for stem, (model, mode, version) in EXPORTS.items():
        doc = {
            "$schema": DRAFT,
            "$id": f"credit-scorer/{stem}/v{version}",
            **model.model_json_schema(mode=mode),
        }
        out[f"{stem}.schema.json"] = orjson.dumps(_standard(doc), option=orjson.OPT_INDENT_2) + b"\n"
    return out


# pydantic writes its own bound names for a constrained int behind a validator (``sk_id_curr``)
_KEYWORDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def _standard(node: Any) -> Any:
    """The schema with pydantic's ``gt``/``ge``/``lt``/``le`` renamed to the JSON Schema keywords."""
    if isinstance(node, dict):
        return {
            _KEYWORDS.get(k, k) if k in _KEYWORDS and not isinstance(v, dict) else k: _standard(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_standard(v) for v in node]
    return node


def stale_files(directory: Path = JSON_DIR) -> list[str]:
    """Names of the files that are missing or differ from the generated schemas."""
    return [
        name
        for name, data in generate().items()
        if not (directory / name).is_file() or (directory / name).read_bytes() != data
    ]


def write(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in generate().items():
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        stale = stale_files()
        if stale:
            print(
                f"stale JSON Schemas in {JSON_DIR}: {', '.join(stale)} (run `python -m schemas.export`)",
                file=sys.stderr,
            )
            return 1
        print(f"JSON Schemas in {JSON_DIR} are up to date")
        return 0
    if args:
        print("usage: python -m schemas.export [--check]", file=sys.stderr)
        return 2
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
