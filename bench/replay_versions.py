"""Replay between two registry versions on the real sample, side by side with the replay against the live
decisions those same versions made: the same figures, and what each mode costs.

    uv run python -m bench.replay_versions [--model DIR] [--against DIR] [--events N] [--runs 3]

History: the real sample's application_test rows (whole forms) in a 4-partition applications topic
(real Tansu), the clients' features (var/features) in a real redis-server. Models: ``--against``
(default: train evaluate's ``today_weighted``, the model before the unweighted default) is registered
as version 1 of a fresh MLflow registry (sqlite store), ``--model`` (default: ``unweighted``, today's
default) as version 2. The live decisions topic holds version 1's decision of every application (the
decision use case under the committed policy, as the worker makes them). Then, with the real CLI:

* ``replay run --model-version 2`` — against the live decisions (read from the decisions topic);
* ``replay run --model-version 2 --against-version 1`` — both versions decide every batch.

The two reports must agree (the live decisions are version 1's); the runs alternate, ``--runs`` times,
and the wall time of each (CLI process included: imports, registry download, forked workers) is
reported as a median. Writes bench/results/replay_versions.json and .md (the versions run's report).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.bench_replay import PARTITIONS, PREFIX, bench_settings, fill_topics
from bench.replay_policy import live_history
from credit_scorer.settings import PROJECT_ROOT, MlflowSettings, Settings

RESULTS = Path(__file__).resolve().parent / "results"
FEATURES = PROJECT_ROOT / "var" / "features"
EVALUATION = PROJECT_ROOT / "var" / "evaluation" / "models"


def model_dir(explicit: Path | None, name: str) -> Path:
    from scoring.model import resolve_model_dir

    if explicit is not None:
        return resolve_model_dir(PROJECT_ROOT, explicit)
    if not (EVALUATION / name).is_dir():
        raise SystemExit(f"error: {EVALUATION / name} not found: run `credit-scorer train evaluate` first")
    return resolve_model_dir(EVALUATION / name)


def registry_settings(settings: Settings, work: Path, dirs: list[Path]) -> Settings:
    """A fresh MLflow registry (sqlite) under ``work`` holding ``dirs`` as versions 1, 2, …"""
    from training.registry import MlflowTarget, register_model_dir

    target = MlflowTarget.from_settings(work, None, "bench-replay-versions", "credit-scorer-bench")
    for i, d in enumerate(dirs, start=1):
        assert register_model_dir(d, target).version == str(i)
    return settings.model_copy(
        update={
            "paths": settings.paths.model_copy(update={"data_dir": work}),
            "mlflow": MlflowSettings(
                tracking_uri=target.tracking_uri, registered_model_name=target.registered_model_name
            ),
        }
    )


def run_cli(settings: Settings, out: Path, *args: str) -> tuple[float, float, dict[str, Any], str]:
    """(wall seconds of the CLI process, seconds of the replay itself as it prints them, summary, line)"""
    from devtools.harness import settings_env

    cmd = [sys.executable, "-c", "from credit_scorer.cli import main; main()", "replay", "run"]
    cmd += ["--out", str(out), "--no-progress", "--no-plots", "--no-publish", *args]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env={**os.environ, **settings_env(settings)}, capture_output=True, timeout=900)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)}: {done.stderr.decode().strip()}")
    line = done.stdout.decode().strip()
    replay_s = re.search(r"\(([0-9.]+)s, [0-9,]+ applications/s\)", line)
    assert replay_s is not None, line
    return seconds, float(replay_s.group(1)), orjson.loads((out / "summary.json").read_bytes()), line


def same_figures(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both comparisons give the same flips, rates, costs and fairness figures."""
    keys = ("rescored", "joined", "overall", "by_contract", "by_income", "shift")
    return all(a[k] == b[k] for k in keys) and a["fairness"] == b["fairness"]


def main(argv: list[str] | None = None) -> None:
    from bench.stream_forms import form_payloads
    from devtools.harness import load_cache
    from devtools.launchers import RedisServer, TansuBroker
    from scoring.model import load_model
    from scoring.policy_file import prepare_with_policy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="version 2 (default: evaluation's unweighted)")
    ap.add_argument("--against", type=Path, default=None, help="version 1 (default: today_weighted)")
    ap.add_argument("--events", type=int, default=48_744, help="application_test rows (all by default)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    new_dir, old_dir = model_dir(args.model, "unweighted"), model_dir(args.against, "today_weighted")
    policy = Settings().policy
    live_model = prepare_with_policy(load_model(old_dir), policy.path, policy.reason_codes)
    payloads = form_payloads(Settings().paths.raw_dir, args.events, "full")
    if payloads is None:
        raise SystemExit("error: the real sample's application_test file is needed")
    work = Path(tempfile.mkdtemp(prefix="replay-versions-"))
    times: dict[str, list[float]] = {"live": [], "versions": []}
    replay_times: dict[str, list[float]] = {"live": [], "versions": []}
    summaries: dict[str, dict[str, Any]] = {}
    lines: dict[str, str] = {}
    with RedisServer() as redis_server:
        broker = TansuBroker(log_path=work / "tansu.log").start()
        try:
            load_cache(redis_server.url, PREFIX, FEATURES)
            settings = bench_settings(broker.bootstrap_servers, redis_server.url)
            live = live_history(live_model, payloads, redis_server.url)
            asyncio.run(fill_topics(settings.kafka, payloads, live))
            settings = registry_settings(settings, work / "registry", [old_dir, new_dir])
            modes = {
                "live": ("--model-version", "2"),
                "versions": ("--model-version", "2", "--against-version", "1"),
            }
            for run in range(args.runs):
                for mode, extra in modes.items():
                    out = work / f"{mode}-{run}"
                    seconds, replay_s, summaries[mode], lines[mode] = run_cli(settings, out, *extra)
                    times[mode].append(seconds)
                    replay_times[mode].append(replay_s)
                    print(f"{mode:8s} run {run + 1}: {seconds:.2f} s — {lines[mode]}", flush=True)
            report = (work / f"versions-{args.runs - 1}" / "report.md").read_text(encoding="utf-8")
        finally:
            broker.stop()
    shutil.rmtree(work, ignore_errors=True)
    medians = {mode: statistics.median(t) for mode, t in times.items()}
    replay_medians = {mode: statistics.median(t) for mode, t in replay_times.items()}
    agree = same_figures(summaries["live"], summaries["versions"])
    doc = {
        "benchmark": "replay_versions",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "applications": len(payloads),
        "partitions": PARTITIONS,
        "models": {"v1 (against)": str(old_dir), "v2 (replayed)": str(new_dir)},
        "wall_seconds": {mode: [round(t, 3) for t in ts] for mode, ts in times.items()},
        "median_wall_seconds": {mode: round(m, 3) for mode, m in medians.items()},
        "versions_over_live": round(medians["versions"] / medians["live"], 3),
        "replay_seconds": replay_times,
        "median_replay_seconds": replay_medians,
        "median_applications_per_s": {m: round(len(payloads) / s) for m, s in replay_medians.items()},
        "replay_versions_over_live": round(replay_medians["versions"] / replay_medians["live"], 3),
        "same_figures_as_against_live_decisions_of_v1": agree,
        "summary": summaries["versions"],
    }
    (RESULTS / "replay_versions.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    head = (
        f"Measured by `uv run python -m bench.replay_versions` ({doc['date']}, {os.cpu_count()} cores "
        "shared): "
        f"{len(payloads):,} real-sample applications, medians over {args.runs} alternating runs. Replay "
        f"seconds against the live decisions {replay_medians['live']:.1f} s, two versions "
        f"{replay_medians['versions']:.1f} s (×{doc['replay_versions_over_live']:.2f}); wall time of the CLI "
        f"process {medians['live']:.1f} s vs {medians['versions']:.1f} s (×{doc['versions_over_live']:.2f}). "
        f"The same figures as the replay against v1's live decisions: {agree}. Plots not kept.\n\n"
    )
    kept = [line for line in report.splitlines() if not line.startswith("![")]
    (RESULTS / "replay_versions.md").write_text(head + "\n".join(kept) + "\n", encoding="utf-8")
    print(f"median replay seconds {replay_medians}, wall {medians}; same figures: {agree}")
    if not agree:
        raise SystemExit("error: the two modes disagree (see bench/results/replay_versions.json)")


if __name__ == "__main__":
    main()
