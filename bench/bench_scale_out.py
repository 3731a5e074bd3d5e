"""Benchmark: scale-out on partitions — 1, 2 and 4 batch-engine workers on an 8-partition topic.

    uv run python -m bench.bench_scale_out [--events 40000] [--runs 2] [--workers 1,2,4] [--quick]

Per run and worker count (interleaved, Tansu restarted before each: its memory log slows as it grows):
the workers are started on empty topics and warmed (one consumer group; every partition assigned,
80 warm-up decisions), then ``--events`` applications are produced as fast as the producer can and
the decisions are read back. Measured from the first to the last measured decision (broker
timestamps): decisions/s of the group, and per worker its decisions (its counter's delta) and its
CPU seconds (/proc) — so the CPU per decision, the number a capacity model needs
(docs/CAPACITY.md). On a 2-core machine shared with the broker, Redis, the producer and the collector,
the curve flattens as soon as the workers' CPU plus theirs reaches 2 cores: the ``machine_cpu_share``
column says where. Writes bench/results/scale_out.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_stream import LOGS, Env, bench_model, cpu_seconds, event_rows
from credit_scorer.settings import PROJECT_ROOT
from devtools.harness import WorkerProcess, application_payloads, collect, produce_payloads, sample_total
from devtools.launchers import RedisServer, TansuBroker, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "scale_out.json"
PARTITIONS = 8


def owned_partitions(worker: WorkerProcess) -> int:
    return sum(
        1 for line in worker.metrics_text().splitlines() if line.startswith("credit_scorer_consumer_lag{")
    )


def machine_cpu_s() -> float:
    """CPU seconds the whole machine spent (all cores, user + system), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(x) for i, x in enumerate(fields[:8]) if i not in (3, 4))  # minus idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


async def wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"scale-out bench: {what} not reached in {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


def one_run(env: Env, make: Any, n_workers: int, n_events: int) -> dict[str, Any]:
    """``make(n, prefix)``: ``n`` application payloads whose ids (the decisions' keys) start with it."""
    settings, topics = env.settings(partitions=PARTITIONS)
    bs = env.broker.bootstrap_servers
    workers = []
    for i in range(n_workers):
        stream = settings.stream.model_copy(update={"metrics_port": free_port()})
        own = settings.model_copy(update={"stream": stream})
        workers.append(WorkerProcess(own, "batch", LOGS / f"{topics.group}-w{i}.log").start())
    try:
        asyncio.run(
            wait_for(
                lambda: (
                    sum(owned_partitions(w) for w in workers) == PARTITIONS
                    and all(owned_partitions(w) for w in workers)
                ),
                120,
                "every worker owning partitions",
            )
        )
        warm = make(80, f"warm{topics.group}")
        asyncio.run(produce_payloads(bs, topics.applications, warm))
        asyncio.run(collect(bs, topics.decisions, keys={k for k, _ in warm}, timeout_s=120))
        events = make(n_events, f"ev{topics.group}")
        before = [
            (cpu_seconds(w.pid), sample_total(w.metrics_text(), "credit_scorer_decisions_total"))
            for w in workers
        ]
        machine0, t0 = machine_cpu_s(), time.perf_counter()
        asyncio.run(produce_payloads(bs, topics.applications, events))
        produce_s = time.perf_counter() - t0  # the workers decide meanwhile: the producer is a ceiling
        records = asyncio.run(collect(bs, topics.decisions, keys={k for k, _ in events}, timeout_s=300))
        wall, machine = time.perf_counter() - t0, machine_cpu_s() - machine0
        after = [
            (cpu_seconds(w.pid), sample_total(w.metrics_text(), "credit_scorer_decisions_total"))
            for w in workers
        ]
    finally:
        for w in workers:
            w.terminate(30)
    measured = {k for k, _ in events}
    stamps = [r.timestamp_ms for r in records if r.key in measured]
    span = max(1e-3, (max(stamps) - min(stamps)) / 1000)
    per_worker = [
        {
            "decisions": int(d1 - d0),
            "cpu_s": round(c1 - c0, 3),
            "cpu_us_per_decision": round((c1 - c0) / max(1, d1 - d0) * 1e6, 1),
        }
        for (c0, d0), (c1, d1) in zip(before, after, strict=True)
    ]
    worker_cpu = sum(w["cpu_s"] for w in per_worker)
    return {
        "workers": n_workers,
        "decisions": len(stamps),
        "seconds": round(span, 3),
        "decisions_per_s": round((len(stamps) - 1) / span, 1),
        "producer_per_s": round(n_events / produce_s, 1),
        "worker_cpu_s": round(worker_cpu, 3),
        "worker_cpu_us_per_decision": round(worker_cpu / max(1, len(stamps)) * 1e6, 1),
        "workers_cpu_share_of_2_cores": round(worker_cpu / wall / (os.cpu_count() or 1), 3),
        "machine_cpu_share": round(machine / wall / (os.cpu_count() or 1), 3),  # everything, all cores
        "per_worker": per_worker,
    }


def table_of(runs: dict[int, list[dict[str, Any]]], counts: list[int]) -> list[dict[str, Any]]:
    """Medians over the runs per worker count, with the speed-up against the first count."""
    table = []
    base = statistics.median(x["decisions_per_s"] for x in runs[counts[0]])
    for k in counts:
        rate = statistics.median(x["decisions_per_s"] for x in runs[k])
        table.append(
            {
                "workers": k,
                "decisions_per_s": round(rate, 1),
                "speedup_vs_1": round(rate / base, 2),
                "per_worker_decisions_per_s": round(rate / k, 1),
                "worker_cpu_us_per_decision": statistics.median(
                    x["worker_cpu_us_per_decision"] for x in runs[k]
                ),
                "per_worker_cpu_share_of_a_core": round(
                    statistics.median(x["workers_cpu_share_of_2_cores"] for x in runs[k])
                    * (os.cpu_count() or 1)
                    / k,
                    3,
                ),
                "machine_cpu_share": statistics.median(x["machine_cpu_share"] for x in runs[k]),
                "producer_per_s": statistics.median(x["producer_per_s"] for x in runs[k]),
            }
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.runs = 5_000, 1
    LOGS.mkdir(parents=True, exist_ok=True)
    from devtools.harness import load_cache
    from scoring.model import load_model

    model_dir = bench_model(args.model)
    features_dir = PROJECT_ROOT / "var" / "features"
    model = load_model(model_dir)
    ids, matrix, rows = event_rows(features_dir, model.schema)

    def make(n: int, prefix: str) -> list[tuple[bytes | None, bytes]]:
        picked = [rows[i % len(rows)] for i in range(n)]
        return application_payloads(model.schema, ids, matrix, picked, id_prefix=prefix)

    counts = [int(x) for x in args.workers.split(",")]
    runs: dict[int, list[dict[str, Any]]] = {k: [] for k in counts}
    with RedisServer() as redis:
        load_cache(redis.url, "bench", features_dir)
        broker = TansuBroker().start()
        try:
            env = Env(model_dir, redis, broker, {})
            for r in range(args.runs):
                for k in counts:
                    broker.restart()
                    runs[k].append(one_run(env, make, k, args.events))
                    print(f"run {r + 1}, {k} worker(s): {runs[k][-1]}", flush=True)
        finally:
            broker.stop()
    table = table_of(runs, counts)
    print(json.dumps(table, indent=2))
    if not args.quick:
        RESULTS.write_text(
            json.dumps(
                {
                    "benchmark": "scale_out",
                    "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
                    "model": {"version": model.model_version, "trees": model.booster.num_trees()},
                    "partitions": PARTITIONS,
                    "args": vars(args) | {"model": str(model_dir)},
                    "table": table,
                    "runs": {str(k): v for k, v in runs.items()},
                    "measured_at": datetime.now(UTC).isoformat(),
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
