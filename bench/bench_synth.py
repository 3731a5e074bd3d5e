"""Benchmark of synthetic Home Credit generation: wall time and peak memory, up to full size.

    uv run python -m bench.bench_synth [--repeats 3] [--small-scale 0.1] [--skip-full] [--keep DIR]

Each run is a fresh subprocess (``synthetic_data.synth.synthesize``) so its peak RSS is its own
(``wait4`` rusage). Measured:

* ``small``: scale ``--small-scale`` (default 0.1 = 35,626 clients), plain CSV, median of ``--repeats``;
* ``small_gzip``: the same scale gzip-compressed, once (side by side with plain: the cost of gzip);
* ``full``: scale 1.0 (307,511 + 48,744 applicants, ~58M rows in the eight files), plain CSV, once.

Ratios: gzip / plain at the small scale, and full-size seconds per client / small-scale seconds per
client (1.0 = generation scales linearly). Goal: full size in a few minutes on 2 cores, < 2 GB peak RSS.
Writes bench/results/synth.json. Output goes to a temporary folder, deleted afterwards unless ``--keep``.
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

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"
PROJECT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys
from pathlib import Path
from synthetic_data.synth import synthesize
s = synthesize(Path(sys.argv[1]), scale=float(sys.argv[2]), seed=0, compress=sys.argv[3] == "1")
print(json.dumps({"rows": {f.table: f.rows for f in s.files}, "bytes": s.total_bytes, "seconds": s.seconds}))
"""


def run_once(out_dir: Path, scale: float, compress: bool) -> dict[str, Any]:
    """One generation in a subprocess: wall seconds, peak RSS (MB), rows and bytes written."""
    shutil.rmtree(out_dir, ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(out_dir), repr(scale), "1" if compress else "0"],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench_synth: generation at scale {scale} failed with exit code {proc.returncode}")
    result = json.loads(output)
    rows = result["rows"]
    return {
        "scale": scale,
        "compress": compress,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "rows": rows,
        "total_rows": sum(rows.values()),
        "clients": rows["application_train"] + rows["application_test"],
        "bytes": result["bytes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-scale", type=float, default=0.1)
    parser.add_argument("--skip-full", action="store_true", help="Only the small-scale runs.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the full-size output in this folder.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        small = [run_once(tmp / "small", args.small_scale, False) for _ in range(args.repeats)]
        small_median = statistics.median(r["wall_s"] for r in small)
        gz = run_once(tmp / "small-gz", args.small_scale, True)
        full = None
        if not args.skip_full:
            full = run_once(args.keep or tmp / "full", 1.0, False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    per_client_small = small_median / small[0]["clients"]
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "small": {**small[0], "wall_s_runs": [r["wall_s"] for r in small], "wall_s_median": small_median},
        "small_gzip": gz,
        "full": full,
        "ratios": {
            "gzip_over_plain_small": round(gz["wall_s"] / small_median, 2),
            "full_per_client_over_small_per_client": (
                round(full["wall_s"] / full["clients"] / per_client_small, 2) if full else None
            ),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"scale {args.small_scale:g} plain : median {small_median:.1f} s over {args.repeats} runs, "
        f"peak RSS {max(r['peak_rss_mb'] for r in small):.0f} MB, {small[0]['total_rows']:,} rows"
    )
    print(
        f"scale {args.small_scale:g} gzip  : {gz['wall_s']:.1f} s "
        f"(x{result['ratios']['gzip_over_plain_small']} of plain), {gz['bytes'] / 1e6:.0f} MB"
    )
    if full:
        print(
            f"scale 1.0 plain   : {full['wall_s']:.1f} s, peak RSS {full['peak_rss_mb']:.0f} MB, "
            f"{full['total_rows']:,} rows, {full['bytes'] / 1e9:.2f} GB "
            f"(per-client time x{result['ratios']['full_per_client_over_small_per_client']} of small)"
        )
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
