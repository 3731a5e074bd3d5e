"""Benchmark of the feature build: wall time and peak memory on full-size synthetic data.

    uv run python -m bench.bench_feature_build [--raw var/synth-full] [--repeats 3] [--sample DIR]

Each build runs in a fresh subprocess (``feature_loader.build.build_features``) so its peak RSS and
CPU time are its own (``wait4`` rusage). Measured:

* ``full``: the build on ``--raw`` (default ``var/synth-full``, made once with
  ``uv run credit-scorer data synth --out var/synth-full --scale 1.0 --seed 0 --no-compress``),
  median of ``--repeats`` runs;
* ``sample``: the build on the real Home Credit sample (``../shared/data/home-credit-sample``), once,
  for comparison (skipped when absent).

Goal (issue 2): full size under 60 s and under 6 GB on this 2-core machine. Prints medians, the ratio
to the goals and full / sample side by side (seconds per client). CPU seconds (user + sys) are printed
too: the machine is shared, so wall time also reflects the other processes (load average recorded).
Writes bench/results/feature_build.json. Build outputs go to a temporary folder, deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results" / "feature_build.json"
DEFAULT_RAW = PROJECT / "var" / "synth-full"
DEFAULT_SAMPLE = PROJECT.parent / "shared" / "data" / "home-credit-sample"
GOAL_SECONDS, GOAL_RSS_MB = 60.0, 6 * 1024.0

_CHILD = """
import json, sys
from pathlib import Path
from feature_loader.build import build_features
r = build_features(Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps({"rows": r.rows, "features": len(r.schema), "schema_version": r.schema.version,
                  "stages": r.seconds, "warnings": r.warnings}))
"""


def input_summary(raw: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(raw.glob("*.csv*"))}


def run_once(raw: Path, out: Path) -> dict[str, Any]:
    """One build in a subprocess: wall seconds, CPU seconds, peak RSS (MB) and the build's own stages."""
    shutil.rmtree(out, ignore_errors=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(raw), str(out)], cwd=PROJECT, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"bench_feature_build: the build on {raw} failed with exit code {code}")
    return {
        **json.loads(output),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_avg_1m_before": round(load_before, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW, help="Full-size raw tables.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="Real sample for comparison.")
    args = parser.parse_args()
    if (
        not (args.raw / "application_train.csv").exists()
        and not (args.raw / "application_train.csv.gz").exists()
    ):
        raise SystemExit(
            f"bench_feature_build: no raw tables in {args.raw}; make them with "
            f"`uv run credit-scorer data synth --out {args.raw} --scale 1.0 --seed 0 --no-compress`"
        )

    tmp = Path(tempfile.mkdtemp(prefix="bench-features-"))
    try:
        full = [run_once(args.raw, tmp / "full") for _ in range(args.repeats)]
        sample = run_once(args.sample, tmp / "sample") if args.sample.exists() else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    wall = statistics.median(r["wall_s"] for r in full)
    cpu = statistics.median(r["cpu_s"] for r in full)
    rss = statistics.median(r["peak_rss_mb"] for r in full)
    stages = {k: statistics.median(r["stages"][k] for r in full) for k in full[0]["stages"]}
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "raw": str(args.raw),
        "input_bytes": input_summary(args.raw),
        "full": {
            "rows": full[0]["rows"],
            "features": full[0]["features"],
            "wall_s_runs": [r["wall_s"] for r in full],
            "cpu_s_runs": [r["cpu_s"] for r in full],
            "peak_rss_mb_runs": [r["peak_rss_mb"] for r in full],
            "load_avg_1m_before_runs": [r["load_avg_1m_before"] for r in full],
            "wall_s_median": wall,
            "cpu_s_median": cpu,
            "peak_rss_mb_median": rss,
            "stage_s_median": stages,
        },
        "sample": sample,
        "goal": {"wall_s": GOAL_SECONDS, "peak_rss_mb": GOAL_RSS_MB},
        "ratios": {
            "wall_over_goal": round(wall / GOAL_SECONDS, 3),
            "rss_over_goal": round(rss / GOAL_RSS_MB, 3),
            "full_over_sample_wall": round(wall / sample["wall_s"], 1) if sample else None,
            "full_over_sample_rows": round(full[0]["rows"] / sample["rows"], 1) if sample else None,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    gb = sum(result["input_bytes"].values()) / 1e9
    head = f"full size ({full[0]['rows']:,} clients, {gb:.2f} GB CSV) × {full[0]['features']} features"
    print(f"{head}, {len(full)} runs:")
    print(
        f"  wall median {wall:.1f} s (runs {result['full']['wall_s_runs']}), CPU median {cpu:.1f} s, "
        f"peak RSS median {rss:.0f} MB"
    )
    print(
        f"  vs goal: wall x{result['ratios']['wall_over_goal']} of {GOAL_SECONDS:.0f} s, "
        f"RSS x{result['ratios']['rss_over_goal']} of {GOAL_RSS_MB / 1024:.0f} GB"
    )
    print("  stages (median s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    if sample:
        ratios = result["ratios"]
        print(
            f"real sample ({sample['rows']:,} clients): wall {sample['wall_s']:.1f} s, "
            f"CPU {sample['cpu_s']:.1f} s, peak RSS {sample['peak_rss_mb']:.0f} MB | full / sample: "
            f"wall x{ratios['full_over_sample_wall']} for x{ratios['full_over_sample_rows']} clients"
        )
    print(f"load average (1 min) before the full runs: {result['full']['load_avg_1m_before_runs']}")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
