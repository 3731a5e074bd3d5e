"""Vector assembly of whole-form events, before/after a change of ``scoring/vector.py``, interleaved.

    uv run python -m bench.compare_assembly [--before REV] [--events 5000] [--repeats 9]

The ``VectorAssembler`` of git revision ``REV`` (loaded from ``git show REV:scoring/vector.py``) and
the working tree's, on the same whole forms (application_test rows of the real sample, as the producer
sends them) and the feature schema of ``var/features``, batches of 500; the two are first checked to
give bit-identical matrices, then timed in alternation (CPU µs per event, median of the passes: the
machine is shared). Writes bench/results/assembly_blocks.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from credit_scorer.settings import PROJECT_ROOT, get_settings

RESULTS = Path(__file__).resolve().parent / "results" / "assembly_blocks.json"


def _assembler_at(rev: str) -> type:
    source = subprocess.run(
        ["git", "show", f"{rev}:scoring/vector.py"], cwd=PROJECT_ROOT, check=True, capture_output=True
    ).stdout
    with tempfile.NamedTemporaryFile("wb", suffix=".py", delete=False) as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location("vector_before", fh.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VectorAssembler  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    from devtools.application_sources import read_csv_applications
    from feature_loader.feature_schema import FeatureSchema
    from scoring.vector import VectorAssembler

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="4d18129", help="git revision of the 'before' assembler")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    schema = FeatureSchema.load(PROJECT_ROOT / "var" / "features" / "feature_schema.json")
    rows = read_csv_applications(get_settings().paths.raw_dir / "application_test.csv.gz", limit=args.events)
    forms = [r.fields for r in rows]
    batches = [forms[i : i + 500] for i in range(0, len(forms) - 499, 500)]
    cached = np.random.default_rng(0).normal(size=(500, len(schema))).astype(np.float32)
    before, after = _assembler_at(args.before)(schema), VectorAssembler(schema)
    for batch in batches:
        if before.assemble(cached, batch).tobytes() != after.assemble(cached, batch).tobytes():
            sys.exit("the two assemblers disagree: not a refactor")
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, assembler in (("before", before), ("after", after)):
            t0 = time.process_time()
            for batch in batches:
                assembler.assemble(cached, batch)
            times[name].append((time.process_time() - t0) / (500 * len(batches)) * 1e6)
    med = {k: round(statistics.median(v), 2) for k, v in times.items()}
    doc = {
        "benchmark": "assembly_blocks",
        "before": args.before,
        "events": 500 * len(batches),
        "event_fields": len(schema.event_fields),
        "cpu_us_per_event_median": med,
        "passes": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "speedup": round(med["before"] / med["after"], 2),
        "bit_identical": True,
        "measured_at": datetime.now(UTC).isoformat(),
    }
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"whole forms, CPU µs/event: before {med['before']} after {med['after']} (×{doc['speedup']})")


if __name__ == "__main__":
    main()
