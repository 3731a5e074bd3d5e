"""Benchmark of a hot model swap under load (real Tansu broker, real redis-server, real MLflow registry).

    uv run python -m bench.bench_swap [--rate 2000] [--seconds 20] [--promote-at 8] [--runs 1]

One worker process (``credit-scorer stream worker``, batch engine) serves the registry's ``champion``
(``model.source=registry``, alias polled every ``--watch`` s). Applications are offered at ``--rate``
per second for ``--seconds``; ``--promote-at`` seconds in, ``champion`` moves from version 1 to
version 2 (``Registry.set_alias``, what ``credit-scorer model promote`` does). Reported:

* ``promotion_to_first_new_s``: promotion (wall clock after the alias write) → the broker timestamp of
  the first decision stamped with version 2 (poll + download + verify + prepare + the next batch);
* ``promotion_to_last_old_s``: → the last decision of version 1 (batches in flight at the swap);
* the audit: applications offered, decisions read, missing, duplicates, decisions per version, and
  partitions where a version-1 decision follows a version-2 one (must be none).

Models: two LightGBM models (seeds 0 and 1, 100 trees) trained once on var/features (the real sample's
feature build, ``credit-scorer features build --out var/features``) into var/bench/swap-models, registered
into a fresh sqlite registry per run under var/bench/swap-registry/. Writes bench/results/swap.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credit_scorer.settings import PROJECT_ROOT, MlflowSettings, PathsSettings, RedisSettings, Settings
from devtools.harness import (
    ConsumedRecord,
    KafkaTopics,
    WorkerProcess,
    application_payloads,
    collect,
    create_topics,
    load_cache,
    produce_payloads,
    settings_for,
)
from devtools.launchers import RedisServer, TansuBroker, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "swap.json"
BENCH_DIR = PROJECT_ROOT / "var" / "bench"
FEATURES = PROJECT_ROOT / "var" / "features"
NAME = "credit-scorer-swap"


def two_models() -> list[Path]:
    from scoring.model import resolve_model_dir
    from training.train import TrainConfig, train_model

    out = []
    for seed in (0, 1):
        folder = BENCH_DIR / "swap-models" / str(seed)
        if folder.is_dir() and any(folder.iterdir()):
            out.append(resolve_model_dir(folder))
            continue
        print(f"training model seed {seed} (100 trees) on {FEATURES} …", flush=True)
        cfg = TrainConfig(folds=2, seed=seed, max_rounds=100, early_stopping=0, plots=False)
        out.append(train_model(FEATURES, folder, cfg).model_dir)
    return out


def fresh_registry(model_dirs: list[Path], run: int) -> Path:
    from training.registry import MlflowTarget, register_model_dir

    # one store per run: MLflow caches its engine per URI, a deleted and re-created file is read-only to it
    root = BENCH_DIR / "swap-registry" / f"run-{run}"
    target = MlflowTarget.from_settings(root, None, "bench-swap", NAME)
    for model_dir in model_dirs:
        register_model_dir(model_dir, target)
    return root


def worker_settings(broker: TansuBroker, redis: RedisServer, registry: Path, watch_s: float) -> Settings:
    sfx = f"{os.getpid()}-{time.monotonic_ns()}"
    topics = KafkaTopics(f"apps-{sfx}", f"dec-{sfx}", f"dlq-{sfx}", f"bench-{sfx}", 4)
    asyncio.run(
        create_topics(
            broker.bootstrap_servers, [topics.applications, topics.decisions, topics.dead_letters], 4
        )
    )
    s = settings_for(broker.bootstrap_servers, topics, metrics_port=free_port())
    return s.model_copy(
        update={
            "redis": RedisSettings(url=redis.url, key_prefix="bench"),
            "paths": PathsSettings(data_dir=registry),
            "mlflow": MlflowSettings(
                tracking_uri=f"sqlite:///{registry / 'mlflow.db'}", registered_model_name=NAME
            ),
            "model": s.model.model_copy(update={"source": "registry", "watch_interval_s": watch_s}),
            "log_level": "INFO",
        }
    )


async def offer_and_promote(
    settings: Settings, payloads: list[Any], rate: float, promote_at: float
) -> tuple[float, float]:
    """Offer ``payloads`` at ``rate``; promote version 2 ``promote_at`` s in. (promoted at, offer seconds)."""
    from credit_scorer.model_source import open_registry

    registry = open_registry(settings)
    kafka = settings.kafka
    producing = asyncio.ensure_future(
        produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads, rate=rate)
    )
    await asyncio.sleep(promote_at)
    await asyncio.get_running_loop().run_in_executor(None, registry.set_alias, "champion", "2")
    promoted_at = time.time()
    return promoted_at, await producing


def audit(records: list[ConsumedRecord], keys: set[bytes], versions: dict[str, str]) -> dict[str, Any]:
    from schemas.codec import decode_decision

    counts = Counter(r.key for r in records if r.key is not None)
    per_version: Counter[str] = Counter()
    first_new, last_old, back_to_old = float("inf"), 0.0, 0
    for partition in sorted({r.partition for r in records}):
        seen_new = False
        for r in sorted((r for r in records if r.partition == partition), key=lambda r: r.offset):
            v = versions.get(decode_decision(r.value).model_version, "other")
            per_version[v] += 1
            if v == "2":
                seen_new, first_new = True, min(first_new, r.timestamp_ms / 1000)
            elif v == "1":
                back_to_old += int(seen_new)
                last_old = max(last_old, r.timestamp_ms / 1000)
    return {
        "offered": len(keys),
        "decisions": len(records),
        "missing": len(keys - set(counts)),
        "duplicates": sum(c - 1 for c in counts.values()),
        "per_registry_version": dict(per_version),
        "old_after_new_in_a_partition": back_to_old,
        "first_new_ts": first_new,
        "last_old_ts": last_old,
    }


def one_run(args: argparse.Namespace, env: dict[str, Any], run: int) -> dict[str, Any]:
    settings = worker_settings(env["broker"], env["redis"], fresh_registry(env["models"], run), args.watch)
    from credit_scorer.model_source import open_registry

    open_registry(settings).set_alias("champion", "1")
    n = int(args.rate * args.seconds)
    rows = env["rows"]
    payloads = application_payloads(
        env["schema"], env["ids"], env["matrix"], [rows[i % len(rows)] for i in range(n)], id_prefix=f"s{run}"
    )
    log = BENCH_DIR / "swap-logs" / f"worker-{run}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(settings, "batch", log).start()
    try:
        deadline = time.monotonic() + 180
        while "credit_scorer_model_info{" not in worker.metrics_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        promoted_at, offer_s = asyncio.run(offer_and_promote(settings, payloads, args.rate, args.promote_at))
        keys = {k for k, _ in payloads if k is not None}
        kafka = settings.kafka
        records = asyncio.run(
            collect(kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, timeout_s=300)
        )
    finally:
        worker.terminate(30)
    result = audit(records, keys, env["versions"])
    first_new, last_old = result.pop("first_new_ts"), result.pop("last_old_ts")
    return {
        "offered_rate": round(n / offer_s, 1),
        "promotion_to_first_new_s": round(first_new - promoted_at, 3),
        "promotion_to_last_old_s": round(last_old - promoted_at, 3),
        **result,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--promote-at", type=float, default=8.0)
    parser.add_argument("--watch", type=float, default=1.0, help="model.watch_interval_s of the worker")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from bench.bench_stream import event_rows
    from scoring.model import load_model

    models = two_models()
    shutil.rmtree(BENCH_DIR / "swap-registry", ignore_errors=True)
    loaded = [load_model(m) for m in models]
    ids, matrix, rows = event_rows(FEATURES, loaded[0].schema)
    env: dict[str, Any] = {
        "models": models,
        "schema": loaded[0].schema,
        "ids": ids,
        "matrix": matrix,
        "rows": rows,
        "versions": {m.model_version: str(i + 1) for i, m in enumerate(loaded)},
    }
    runs = []
    with RedisServer() as redis:
        load_cache(redis.url, "bench", FEATURES)
        broker = TansuBroker().start()
        env |= {"redis": redis, "broker": broker}
        try:
            for r in range(args.runs):
                broker.restart()  # Tansu's memory storage never frees
                runs.append(one_run(args, env, r))
                print(f"  run {r + 1}: {runs[-1]}", flush=True)
        finally:
            broker.stop()
    summary = {
        k: statistics.median(run[k] for run in runs)
        for k in ("offered_rate", "promotion_to_first_new_s", "promotion_to_last_old_s")
    }
    exactly_once = all(r["missing"] == 0 and r["duplicates"] == 0 for r in runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "swap",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "params": vars(args) | {"out": str(args.out)},
                "median": summary,
                "exactly_once": exactly_once,
                "never_back_to_old": all(r["old_after_new_in_a_partition"] == 0 for r in runs),
                "runs": runs,
            },
            indent=2,
        )
    )
    print(json.dumps({"median": summary, "exactly_once": exactly_once}), flush=True)


if __name__ == "__main__":
    main()
