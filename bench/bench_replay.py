"""Benchmark of the replay: rescoring rate over a full-size synthetic history (real Tansu, real Redis).

    uv run python -m bench.bench_replay [--synth DIR] [--model DIR] [--runs 3] [--limit N]

History: every row of application_train + application_test of a full-size synthetic set (356,255
applications; ``credit-scorer data synth --scale 1.0 --seed 0 --no-compress``, generated into
var/bench/replay-synth when missing) as events in a 4-partition applications topic, and one live
decision per application in the decisions topic (scored beforehand with the same service function).
Client features: one vector per client in the model's schema, drawn from the real sample's feature
build rows (realistic values and NaNs), loaded into a real redis-server.

Measured end to end (``replay.parallel.ParallelReplayer.run``, by default two worker processes per
core, each on some partitions): read the live decisions for the join, read the applications, fetch
features (one MGET per batch), rescore, encode and publish the replay decisions, checkpoint the rows.
Goal: ≥ 30,000 applications/s. Stage seconds are summed over the workers. Side by side: one process,
one worker per core, reasons on every REFUS, smaller batches, and building the report. Model:
``--model DIR``, else the stream benchmark's choice (newest under var/models, else its 500-tree model
on var/features). Writes bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from credit_scorer.settings import PROJECT_ROOT, KafkaSettings, Settings
from devtools.launchers import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "replay.json"
SYNTH_DIR = PROJECT_ROOT / "var" / "bench" / "replay-synth"
FULL_SIZE = 356_255
PARTITIONS = 4
PREFIX = "cs-bench-replay"
GOAL_APPLICATIONS_PER_S = 30_000


def ensure_synth(folder: Path) -> tuple[Path, Path]:
    train, test = folder / "application_train.csv", folder / "application_test.csv"
    if not (train.is_file() and test.is_file()):
        print(f"generating the full-size synthetic set into {folder} (about 2 min) …", flush=True)
        cmd = ["credit-scorer", "data", "synth", "--out", str(folder), "--scale", "1.0", "--seed", "0"]
        subprocess.run([*cmd, "--no-compress", "--quiet"], check=True)
    return train, test


def application_docs(train: Path, test: Path, limit: int | None) -> list[tuple[bytes, bytes]]:
    from devtools.application_sources import read_csv_applications

    rows = read_csv_applications(train, limit)
    if limit is None or len(rows) < limit:
        rows += read_csv_applications(test, None if limit is None else limit - len(rows))
    return [
        (
            f"app-{i}".encode(),
            orjson.dumps({"application_id": f"app-{i}", "sk_id_curr": r.sk_id_curr, **r.fields}),
        )
        for i, r in enumerate(rows)
    ]


def client_vectors(model: Any, ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """One vector per client: rows of the real sample's feature build, drawn at random."""
    from feature_cache.loader import read_feature_table

    _, real = read_feature_table(PROJECT_ROOT / "var" / "features" / "features.parquet", model.schema)
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(real[rng.integers(0, len(real), len(ids))])


def live_decisions(
    model: Any, payloads: list[tuple[bytes, bytes]], ids: np.ndarray, matrix: np.ndarray
) -> list[tuple[bytes, bytes]]:
    """The live decision of every application, built by the decision use case (as the worker does)."""
    from schemas.codec import parse_application
    from scoring.decide import DecideOptions, decide
    from scoring.decision import StageTimings, decision_bytes
    from scoring.features import CachedFeatures

    row_of = {int(c): i for i, c in enumerate(ids)}
    out: list[tuple[bytes, bytes]] = []
    for lo in range(0, len(payloads), 20_000):
        apps = [parse_application(v, 1 << 16) for _, v in payloads[lo : lo + 20_000]]
        idx = np.array([row_of[a.sk_id_curr] for a in apps])
        cached = CachedFeatures(
            matrix[idx], np.ones(len(apps), dtype=bool), model.feature_version, time.time()
        )
        score = decide(model, apps, cached, options=DecideOptions("none", num_threads=0)).score
        timings = StageTimings(time.time(), 0.0, score.inference_s, 0.0)
        out += [
            (a.key.encode(), decision_bytes(a, r, timings)) for a, r in zip(apps, score.results, strict=True)
        ]
    return out


async def fill_topics(
    kafka: KafkaSettings, apps: list[tuple[bytes, bytes]], live: list[tuple[bytes, bytes]]
) -> None:
    from devtools.harness import create_topics, produce_payloads

    await create_topics(
        kafka.bootstrap_servers, [kafka.applications_topic, kafka.decisions_topic], PARTITIONS
    )
    await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, apps, chunk=5_000)
    await produce_payloads(kafka.bootstrap_servers, kafka.decisions_topic, live, chunk=5_000)


async def new_replay_topic(settings: Settings) -> Settings:
    from devtools.harness import create_topics

    topic = f"replay-{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka.bootstrap_servers, [topic], PARTITIONS)
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"replay_topic": topic})})


def one_run(settings: Settings, model: Any, work: Path, **options: Any) -> dict[str, Any]:
    from replay.parallel import ParallelReplayer
    from replay.runner import ReplayOptions

    async def go() -> Any:
        s = await new_replay_topic(settings)
        out = Path(tempfile.mkdtemp(dir=work, prefix="run-"))
        opts = ReplayOptions(out_dir=out, checkpoint_every_s=1e9, **{"workers": 0, **options})
        return await ParallelReplayer(s, model, opts).run()

    cpu0 = os.times()
    result = asyncio.run(go())
    cpu1 = os.times()
    assert result.status == "complete", result
    return {
        "applications": result.rescored,
        "seconds": round(result.seconds, 3),
        "applications_per_s": round(result.rescored / result.seconds, 1),
        "stage_seconds": {k: round(v, 3) for k, v in result.stage_seconds.items()},
        "process_cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
        "workers_cpu_s": round(
            (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system), 2
        ),
        "out_dir": str(result.out_dir),
    }


def fewer_trees(model: Any, trees: int) -> Any:
    """The same model cut to its first ``trees`` trees (throughput vs model size; decisions differ)."""
    import lightgbm

    from scoring.model import LoadedModel

    booster = lightgbm.Booster(model_str=model.booster.model_to_string(num_iteration=trees))
    card = model.card.model_copy(update={"model_version": f"{model.model_version}-{trees}t"})
    return LoadedModel(booster=booster, card=card, schema=model.schema, path=model.path)


def predict_ceiling(model: Any, matrix: np.ndarray, rows: int = 20_000) -> float:
    """Rows per CPU-second of LightGBM's predict alone, one thread: the scoring stage's upper bound."""
    x = np.ascontiguousarray(matrix[:rows])
    model.booster.predict(x[:100], num_threads=1)
    c0 = time.process_time()
    model.booster.predict(x, num_threads=1)
    return len(x) / (time.process_time() - c0)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    med = statistics.median(r["applications_per_s"] for r in runs)
    best = min(runs, key=lambda r: abs(r["applications_per_s"] - med))
    return {
        **best,
        "applications_per_s": med,
        "runs_applications_per_s": [r["applications_per_s"] for r in runs],
    }


@dataclass(frozen=True)
class Measured:
    default: list[dict[str, Any]]  # the runs of the default configuration
    variants: dict[str, dict[str, Any]]  # one run of each variant
    predict_rows_per_cpu_s: float
    report_s: float
    flips: int  # decisions that changed between live and replay (ACCORD↔REFUS), from the report

    @property
    def median(self) -> dict[str, Any]:
        return median_run(self.default)

    def ratios(self) -> dict[str, float]:
        med = self.median["applications_per_s"]
        return {name: round(v["applications_per_s"] / med, 3) for name, v in self.variants.items()}


def main(argv: list[str] | None = None) -> None:
    from bench.bench_stream import bench_model
    from scoring.model import load_model
    from scoring.prepared import PreparedModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", type=Path, default=SYNTH_DIR)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--limit", type=int, default=None, help="Use the first N applications only (quick check)."
    )
    args = ap.parse_args(argv)

    model = PreparedModel(load_model(bench_model(args.model)))
    print(
        f"model {model.model_version}: {model.booster.num_trees()} trees, {len(model.schema)} features",
        flush=True,
    )
    t0 = time.perf_counter()
    apps = application_docs(*ensure_synth(args.synth), args.limit)
    ids = np.unique(np.array([orjson.loads(v)["sk_id_curr"] for _, v in apps], dtype=np.int64))
    matrix = client_vectors(model, ids)
    live = live_decisions(model, apps, ids, matrix)
    print(
        f"{len(apps):,} applications, {len(ids):,} clients prepared in {time.perf_counter() - t0:.0f}s",
        flush=True,
    )
    measured = measure(model, apps, ids, matrix, live, args.runs)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results_record(model, len(apps), len(ids), measured), indent=2) + "\n")
    print_summary(len(apps), args.runs, measured)


def measure(
    model: Any,
    apps: list[tuple[bytes, bytes]],
    ids: np.ndarray,
    matrix: np.ndarray,
    live: list[tuple[bytes, bytes]],
    runs: int,
) -> Measured:
    """On a fresh Tansu and redis-server: the default runs, each variant once, the report build."""
    from devtools.launchers import TansuBroker
    from replay.report import build_report

    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    redis_server = RedisServer().start()
    broker = TansuBroker(log_path=work / "tansu.log").start()
    try:
        load_vectors(redis_server.url, model, ids, matrix)
        settings = bench_settings(broker.bootstrap_servers, redis_server.url)
        asyncio.run(fill_topics(settings.kafka, apps, live))
        print("topics filled; measuring …", flush=True)

        default = [one_run(settings, model, work) for _ in range(runs)]
        for r in default:
            print(
                f"  default: {r['applications_per_s']:,.0f} applications/s ({r['seconds']}s) "
                f"{r['stage_seconds']}",
                flush=True,
            )
        variants = {
            "one_process": one_run(settings, model, work, workers=1),
            "one_worker_per_core": one_run(settings, model, work, workers=os.cpu_count() or 1),
            "reasons_on_refusals": one_run(settings, model, work, reasons="refusals"),
            "batch_1000": one_run(settings, model, work, batch_size=1_000),
            "no_publish": one_run(settings, model, work, publish=False),
            "model_100_trees": one_run(settings, fewer_trees(model, 100), work),
        }
        ceiling = predict_ceiling(model, matrix)
        t_report = time.perf_counter()
        comparison = build_report(Path(default[0]["out_dir"]))
        report_s = time.perf_counter() - t_report
    finally:
        broker.stop()
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)
    flips = comparison.overall.accord_to_refus + comparison.overall.refus_to_accord
    return Measured(default, variants, ceiling, report_s, flips)


def load_vectors(redis_url: str, model: Any, ids: np.ndarray, matrix: np.ndarray) -> None:
    """The clients' vectors as the model's feature version, switched live."""
    import redis

    from feature_cache.loader import write_vectors
    from feature_cache.versions import switch_version

    client = redis.Redis.from_url(redis_url)
    summary = write_vectors(client, PREFIX, model.schema, ids, matrix, source="bench_replay")
    switch_version(client, PREFIX, summary.version)
    client.close()


def bench_settings(bootstrap_servers: str, redis_url: str) -> Settings:
    base = Settings()
    kafka = base.kafka.model_copy(
        update={
            "bootstrap_servers": bootstrap_servers,
            "applications_topic": "bench-apps",
            "decisions_topic": "bench-decisions",
            "partitions": PARTITIONS,
        }
    )
    return base.model_copy(
        update={
            "kafka": kafka,
            "redis": base.redis.model_copy(update={"url": redis_url, "key_prefix": PREFIX}),
        }
    )


def results_record(model: Any, applications: int, clients: int, m: Measured) -> dict[str, Any]:
    return {
        "benchmark": "replay",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "model": {
            "version": model.model_version,
            "trees": model.booster.num_trees(),
            "features": len(model.schema),
        },
        "history": {"applications": applications, "clients": clients, "partitions": PARTITIONS},
        "goal_applications_per_s": GOAL_APPLICATIONS_PER_S,
        "default": m.median,
        "default_runs": m.default,
        "variants": m.variants,
        "ratios_vs_default": m.ratios(),
        "predict_only_rows_per_cpu_s": round(m.predict_rows_per_cpu_s, 1),
        "report": {"seconds": round(m.report_s, 2), "flips": m.flips},
    }


def print_summary(applications: int, runs: int, m: Measured) -> None:
    med, ratios = m.median, m.ratios()
    goal = "meets" if med["applications_per_s"] >= GOAL_APPLICATIONS_PER_S else "BELOW"
    print()
    print(
        f"replay of {applications:,} applications, median of {runs}: "
        f"{med['applications_per_s']:,.0f} applications/s ({goal} the {GOAL_APPLICATIONS_PER_S:,}/s goal)"
    )
    print(f"  stages (s): {med['stage_seconds']}")
    for name, v in m.variants.items():
        print(f"  {name:<20} {v['applications_per_s']:>10,.0f}/s   ratio {ratios[name]:.2f}x")
    print(f"  LightGBM predict alone: {m.predict_rows_per_cpu_s:,.0f} rows per CPU-second (one thread)")
    print(f"  report build: {m.report_s:.1f}s;  results: {RESULTS}")


if __name__ == "__main__":
    main()
