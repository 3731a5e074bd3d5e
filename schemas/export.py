"""Export the JSON Schemas of the event contracts into ``schemas/json/`` for upstream/downstream teams.

``python -m schemas.export`` writes them; ``python -m schemas.export --check`` exits 1 (naming the stale
file) when a committed file differs from what the models generate. A unit test runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from schemas.events import SCHEMA_VERSION, DeadLetter, Decision, LoanApplication

JSON_DIR = Path(__file__).resolve().parent / "json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# file stem → (model, mode): producers send applications (validation form); we emit the others.
EXPORTS: dict[str, tuple[Any, str]] = {
    "loan_application": (LoanApplication, "validation"),
    "decision": (Decision, "serialization"),
    "dead_letter": (DeadLetter, "serialization"),
}


def generate() -> dict[str, bytes]:
    """File name → exact bytes of every exported schema."""
    out: dict[str, bytes] = {}
    for stem, (model, mode) in EXPORTS.items():
        doc = {
            "$schema": DRAFT,
            "$id": f"credit-scorer/{stem}/v{SCHEMA_VERSION}",
            **model.model_json_schema(mode=mode),
        }
        out[f"{stem}.schema.json"] = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    return out


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
