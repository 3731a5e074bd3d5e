"""Run the benchmarks one after another: `uv run python -m bench [NAME ...] [--quick]`.

Each benchmark is its own module (`bench/bench_<name>.py`, runnable alone with
`uv run python -m bench.bench_<name> --help`) and writes `bench/results/<name>.json`. They run in
sequence, never in parallel, so that each one has the machine to itself; full-size inputs (synthetic
data, features) are generated on first use under `var/` and reused.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# Order matters: synthetic data feeds the feature build, which feeds replay's history.
BENCHMARKS = (
    "synth",
    "feature_build",
    "training",
    "redis_cache",
    "redis_cluster",
    "scoring",
    "attribution",
    "parse",
    "batch_path",
    "drift",
    "stream",
    "latency_budget",
    "scale_out",
    "soak",
    "api",
    "replay",
    "store",
)
SUPPORTS_QUICK = {
    "redis_cache",
    "redis_cluster",
    "latency_budget",
    "scale_out",
    "scoring",
    "stream",
    "soak",
    "api",
    "attribution",
    "store",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes where a benchmark has them")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    failed: list[str] = []
    for name in names:
        cmd = [sys.executable, "-m", f"bench.bench_{name}"]
        if args.quick and name in SUPPORTS_QUICK:
            cmd.append("--quick")
        print(f"\n=== bench {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"=== bench {name}: exit {rc} in {time.perf_counter() - start:.1f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
