"""Benchmark of the event contract on the hot path: parse cost per event, 8-field vs whole-form events.

    uv run python -m bench.bench_parse [--events 5000] [--repeats 7]

The worker parses every record with :func:`schemas.codec.parse_application` and hands
``scoring_fields()`` to the assembly. Side by side on the same application_test rows of the real
sample: version-1 events (the 8 fields of :data:`schemas.events.V1_FIELDS`) and whole forms (every
application column, empty cells null, as the producer sends), both with an event id as the producer's.
Per event, in CPU µs (process time, best of ``--repeats``: the machine is shared): orjson alone, the
contract's form check alone (pydantic-core), the whole parse, and parse + ``scoring_fields``. Also the
vector assembly of the parsed events on the real feature schema (``scoring.vector``, batches of 500),
when var/features holds a build. Writes bench/results/parse.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from credit_scorer.settings import PROJECT_ROOT, Settings

RESULTS = Path(__file__).resolve().parent / "results" / "parse.json"
BATCH = 500


def per_event_us(fn: Callable[[Any], object], items: Sequence[Any], repeats: int) -> float:
    """Best CPU time per item over ``repeats`` passes, in µs."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for item in items:
            fn(item)
        best = min(best, (time.process_time() - t0) / len(items))
    return round(best * 1e6, 2)


def payloads(raw_dir: Path, n: int) -> dict[str, list[bytes]]:
    from devtools.application_sources import read_csv_applications
    from schemas.events import V1_FIELDS

    rows = read_csv_applications(raw_dir / "application_test.csv.gz", limit=n)
    out: dict[str, list[bytes]] = {"8_fields": [], "full": []}
    for i, row in enumerate(rows):
        envelope = {"event_id": f"e-{i}", "application_id": f"a-{i}", "sk_id_curr": row.sk_id_curr}
        fields = row.fields
        out["full"].append(orjson.dumps({**envelope, "schema_version": 2, **fields}))
        legacy = {k: v for k, v in fields.items() if k in V1_FIELDS}
        out["8_fields"].append(orjson.dumps({**envelope, "schema_version": 1, **legacy}))
    return out


def assembly_us(carried: list[dict[str, object]], repeats: int) -> dict[str, Any] | None:
    """CPU µs per event of the vector assembly on the feature build's schema (None without a build)."""
    from feature_loader.build import SCHEMA_FILE
    from feature_loader.feature_schema import FeatureSchema
    from scoring.vector import VectorAssembler

    path = PROJECT_ROOT / "var" / "features" / SCHEMA_FILE
    if not path.is_file():
        return None
    schema = FeatureSchema.load(path)
    assembler = VectorAssembler(schema)
    cached = np.zeros((BATCH, len(schema)), dtype=np.float32)
    batches = [carried[i : i + BATCH] for i in range(0, len(carried) - BATCH + 1, BATCH)]
    us = per_event_us(lambda b: assembler.assemble(cached, b), batches, repeats) / BATCH
    return {"us": round(us, 2), "schema": schema.version, "event_fields": len(schema.event_fields)}


def main(argv: list[str] | None = None) -> None:
    from schemas.codec import parse_application
    from schemas.fast_application import _FORM

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--raw", type=Path, default=None, help="default: settings.paths.raw_dir")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    raw_dir = args.raw or Settings().paths.raw_dir
    limit = 64 * 1024
    stamp = time.time()  # the Kafka record timestamp, as the worker passes it (events carry no time)
    results: dict[str, Any] = {}
    for form, raws in payloads(raw_dir, args.events).items():
        docs = [orjson.loads(r) for r in raws]
        apps = [parse_application(r, limit, record_time=stamp) for r in raws]
        results[form] = {
            "bytes": round(sum(map(len, raws)) / len(raws)),
            "fields": round(sum(len(a.scoring_fields()) for a in apps) / len(apps), 1),
            "orjson_us": per_event_us(orjson.loads, raws, args.repeats),
            "form_check_us": per_event_us(_FORM.validate_python, docs, args.repeats),
            "parse_us": per_event_us(
                lambda r: parse_application(r, limit, record_time=stamp), raws, args.repeats
            ),
            "parse_and_fields_us": per_event_us(
                lambda r: parse_application(r, limit, record_time=stamp).scoring_fields(), raws, args.repeats
            ),
            "assembly": assembly_us([a.scoring_fields() for a in apps], args.repeats),
        }
        print(f"{form:9s} {results[form]}", flush=True)
    ratio = round(results["full"]["parse_and_fields_us"] / results["8_fields"]["parse_and_fields_us"], 2)
    print(f"parse + scoring_fields, full / 8 fields: {ratio}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "parse",
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "loadavg_at_end": os.getloadavg(),
                },
                "args": vars(args),
                "results": results,
                "ratios": {"parse_and_fields_full_vs_8_fields": ratio},
                "measured_at": datetime.now(UTC).isoformat(),
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
