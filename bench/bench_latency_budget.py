"""Benchmark: the worker's own latency budget, next to the broker's one-hop floor, in one run.

    uv run python -m bench.bench_latency_budget [--rate 5000] [--seconds 8] [--runs 3] [--quick]

Per run, interleaved (Tansu restarted before each phase: its memory log slows as it grows):

1. **cold start**: a batch-engine worker process started on a topic holding 500 applications;
   process start → its first decision (the decision record's broker timestamp), group join included;
2. **worker-added latency** at ``--rate`` events/s offered (a producer process, a collector process:
   :mod:`bench.stream_load`): ``credit_scorer_worker_latency_seconds`` (records handed over by the
   consumer → decision published and acknowledged), the histogram's delta over the offered load only,
   p50/p99 interpolated within its buckets (Prometheus' ``histogram_quantile``); event→decision as the
   collector receives it; the worker-added time per stage (``credit_scorer_stage_seconds``, once per
   batch: parse, features, scorer_wait, decide, handback, encode, produce; p50/p99/mean) and the mean
   batch size; the worker's CPU per decision and its full GC collections over the load (process and
   GC collectors of its /metrics); its RSS at the end of the load (steady) and its peak;
3. **broker floor**: the same load read straight back from the applications topic, no worker (one
   produce → fetch hop, a plain aiokafka client); the offerer's produce → ack latency there is the
   broker's own ack with the worker's producer settings (linger 0, acks=all): ``broker_ack_ms``.

Goals (issue 17): worker-added p99 ≤ 10 ms; event→decision p99 ≤ 2.2 × the one-hop floor's p99;
cold start ≤ 5 s; steady RSS ≤ 250 MB per worker. Writes bench/results/latency_budget.json (``--out``:
one file per rate, ``latency_budget_{rate}.json``). The results record whether the worker ran with
compiled bytecode (``bytecode``): the image has it (UV_COMPILE_BYTECODE=1); a checkout run with
PYTHONDONTWRITEBYTECODE=1 compiles every module at every start (run the bench with
``PYTHONPYCACHEPREFIX=<dir>`` and without that variable to measure the image's start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.bench_stream import LOGS, Env, bench_model, broker_floor, event_rows
from bench.stream_load import lat_rows, offer_and_collect
from credit_scorer.metrics import WORKER_STAGES
from credit_scorer.settings import PROJECT_ROOT
from devtools.harness import WorkerProcess, collect, produce_payloads
from devtools.launchers import RedisServer, TansuBroker

RESULTS = Path(__file__).resolve().parent / "results" / "latency_budget.json"
HISTOGRAM = "credit_scorer_worker_latency_seconds"
GOALS = {"worker_added_p99_ms": 10.0, "e2e_over_floor_p99": 2.2, "cold_start_s": 5.0, "steady_rss_mb": 250.0}


STAGES = (*WORKER_STAGES, "inference", "reasons")  # where the worker's time goes (per batch)


def buckets(metrics_text: str, histogram: str = HISTOGRAM, label: str = "") -> dict[float, float]:
    """Cumulative counts of a histogram (the series holding ``label``), by upper bound (seconds)."""
    out: dict[float, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith(histogram + "_bucket{") and label in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def sum_count(metrics_text: str, histogram: str, label: str = "") -> tuple[float, float]:
    """(_sum, _count) of a histogram series holding ``label``."""
    total = count = 0.0
    for line in metrics_text.splitlines():
        if label in line and line.startswith(histogram + "_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif label in line and line.startswith(histogram + "_count"):
            count = float(line.rsplit(" ", 1)[1])
    return total, count


def sample(metrics_text: str, name: str, label: str = "") -> float:
    """The value of one sample line (``name{…label…} value``); 0 when absent."""
    for line in metrics_text.splitlines():
        if line.startswith(name) and label in line and line[len(name)] in " {":
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def mean_delta(after: str, before: str, histogram: str, label: str = "", scale: float = 1e3) -> float:
    """Mean of the observations added between two scrapes (ms for seconds by default)."""
    (s1, c1), (s0, c0) = sum_count(after, histogram, label), sum_count(before, histogram, label)
    return round((s1 - s0) / (c1 - c0) * scale, 3) if c1 > c0 else float("nan")


def quantile_ms(after: dict[float, float], before: dict[float, float], q: float) -> float:
    """``histogram_quantile(q)`` of the counts added between two scrapes (linear within a bucket)."""
    bounds = sorted(after)
    cum = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cum[-1]
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, cum, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower * 1e3
            return (lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)) * 1e3
        lower, below = bound, count
    return lower * 1e3


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def first_decision_at(bs: str, topic: str, timeout_s: float = 60) -> float:
    """Broker timestamp (s) of the first record on ``topic``."""
    records = await collect(bs, topic, 1, timeout_s=timeout_s)
    return min(r.timestamp_ms for r in records) / 1000


def worker_run(
    env: Env, docs: list[dict[str, Any]], rate: float, seconds: float, tick_ms: float
) -> dict[str, Any]:
    settings, topics = env.settings()
    bs = env.broker.bootstrap_servers
    warm = [(b"warm-%d" % i, orjson.dumps(d)) for i, d in enumerate(docs[:500])]
    asyncio.run(produce_payloads(bs, topics.applications, warm))
    started = time.time()
    worker = WorkerProcess(settings, "batch", LOGS / f"{topics.group}-budget.log").start()
    try:
        cold_start_s = asyncio.run(first_decision_at(bs, topics.decisions)) - started
        asyncio.run(collect(bs, topics.decisions, len(warm), timeout_s=120))
        text = text0 = worker.metrics_text()
        before = buckets(text)
        stages0 = {st: buckets(text, "credit_scorer_stage_seconds", f'stage="{st}"') for st in STAGES}
        n = int(rate * seconds)
        offered, got = offer_and_collect(
            bs, topics.applications, topics.decisions, lat_rows(docs, n), rate, seconds, tick_ms, LOGS
        )
        text = worker.metrics_text()
        after = buckets(text)
        stages = {st: buckets(text, "credit_scorer_stage_seconds", f'stage="{st}"') for st in STAGES}
        rss, peak = rss_mb(worker.pid)
    finally:
        worker.terminate(30)
    return {
        "cold_start_s": round(cold_start_s, 3),
        "achieved_offer_per_s": offered["achieved_per_s"],
        # every event decided within (offer time + the slowest event's latency): a lower bound of the
        # worker's throughput, its capacity when it could not keep up
        "decided_per_s_at_least": round(
            got["decisions"] / (offered["seconds"] + got["received_ms"]["max"] / 1e3), 1
        ),
        "decisions": got["decisions"],
        "events": n,
        "worker_added_ms": {
            "p50": round(quantile_ms(after, before, 0.5), 2),
            "p99": round(quantile_ms(after, before, 0.99), 2),
            "count": after.get(float("inf"), 0) - before.get(float("inf"), 0),
        },
        "event_to_decision_ms": got["received_ms"],
        # each stage observed once per micro-batch: p50/p99 over the batches of the load, and the mean
        "stage_ms": {
            st: {
                **{
                    q: round(quantile_ms(stages[st], stages0[st], x), 2)
                    for q, x in (("p50", 0.5), ("p99", 0.99))
                },
                "mean": mean_delta(text, text0, "credit_scorer_stage_seconds", f'stage="{st}"'),
            }
            for st in STAGES
        },
        "batch_size_mean": mean_delta(text, text0, "credit_scorer_batch_size", scale=1.0),
        # the worker's CPU over the load (capacity per core = 1000 / cpu_ms_per_decision) and its full
        # garbage collections (a pause of the loop and the scorer thread each)
        "cpu_ms_per_decision": round(
            (sample(text, "process_cpu_seconds_total") - sample(text0, "process_cpu_seconds_total"))
            * 1e3
            / max(1, got["decisions"]),
            3,
        ),
        "gc_full_collections": sample(text, "python_gc_collections_total", 'generation="2"')
        - sample(text0, "python_gc_collections_total", 'generation="2"'),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
    }


def med(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        v: Any = run
        for key in path:
            v = v[key]
        values.append(float(v))
    return round(statistics.median(values), 2)


def summarize(
    workers: list[dict[str, Any]], floors: list[dict[str, Any]]
) -> tuple[list[float], dict[str, Any], dict[str, bool]]:
    """Per-run e2e/floor ratios, the medians over the runs, and the goals checked against them."""
    ratios = [
        w["event_to_decision_ms"]["p99"] / f["received_ms"]["p99"]
        for w, f in zip(workers, floors, strict=True)
    ]
    summary = {
        "worker_added_ms": {q: med(workers, "worker_added_ms", q) for q in ("p50", "p99")},
        "event_to_decision_ms": {q: med(workers, "event_to_decision_ms", q) for q in ("p50", "p99")},
        "broker_floor_one_hop_ms": {q: med(floors, "received_ms", q) for q in ("p50", "p99")},
        "e2e_over_floor_p99": round(statistics.median(ratios), 2),
        "worker_stage_mean_ms": {st: med(workers, "stage_ms", st, "mean") for st in STAGES},
        "batch_size_mean": med(workers, "batch_size_mean"),
        "cpu_ms_per_decision": med(workers, "cpu_ms_per_decision"),
        "decided_per_s_at_least": med(workers, "decided_per_s_at_least"),
        "gc_full_collections": med(workers, "gc_full_collections"),
        # the broker alone: produce → ack with the worker's producer settings (linger 0, acks=all)
        "broker_ack_ms": {q: med(floors, "offer_ack_ms", q) for q in ("p50", "p99")},
        "cold_start_s": med(workers, "cold_start_s"),
        "steady_rss_mb": med(workers, "rss_mb"),
        "peak_rss_mb": med(workers, "peak_rss_mb"),
    }
    goals = {
        "worker_added_p99_le_10ms": summary["worker_added_ms"]["p99"] <= GOALS["worker_added_p99_ms"],
        "e2e_p99_le_2.2x_floor": summary["e2e_over_floor_p99"] <= GOALS["e2e_over_floor_p99"],
        "cold_start_le_5s": summary["cold_start_s"] <= GOALS["cold_start_s"],
        "steady_rss_le_250mb": summary["steady_rss_mb"] <= GOALS["steady_rss_mb"],
    }
    return ratios, summary, goals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tick-ms", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (other rates elsewhere)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds = 1, 3.0
    LOGS.mkdir(parents=True, exist_ok=True)
    from devtools.harness import load_cache
    from scoring.model import load_model

    model_dir = bench_model(args.model)
    features_dir = PROJECT_ROOT / "var" / "features"
    model = load_model(model_dir)
    ids, matrix, rows = event_rows(features_dir, model.schema)
    from devtools.harness import application_payloads

    payloads = application_payloads(model.schema, ids, matrix, rows[:5000], id_prefix="b")
    docs = [orjson.loads(v) for _, v in payloads]
    workers, floors = [], []
    with RedisServer() as redis:
        load_cache(redis.url, "bench", features_dir)
        broker = TansuBroker().start()
        try:
            env = Env(model_dir, redis, broker, {})
            for r in range(args.runs):
                broker.restart()
                workers.append(worker_run(env, docs, args.rate, args.seconds, args.tick_ms))
                print(f"run {r + 1} worker: {workers[-1]}", flush=True)
                broker.restart()
                floors.append(broker_floor(env, docs, args.rate, args.seconds, args.tick_ms))
                print(f"run {r + 1} floor: {floors[-1]['received_ms']}", flush=True)
        finally:
            broker.stop()
    ratios, summary, goals = summarize(workers, floors)
    print(json.dumps({"summary": summary, "goals": goals}, indent=2))
    if not args.quick:
        args.out.write_text(
            json.dumps(
                {
                    "benchmark": "latency_budget",
                    "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
                    # the image compiles bytecode (UV_COMPILE_BYTECODE=1); without it every start
                    # compiles every module again (PYTHONDONTWRITEBYTECODE=1 and no pycache prefix)
                    "bytecode": {
                        "dont_write": bool(sys.flags.dont_write_bytecode),
                        "pycache_prefix": sys.pycache_prefix,
                    },
                    "model": {"version": model.model_version, "trees": model.booster.num_trees()},
                    "args": vars(args) | {"model": str(model_dir)},
                    "summary": summary,
                    "goals_thresholds": GOALS,
                    "goals": goals,
                    "ratios_per_run": [round(x, 2) for x in ratios],
                    "runs": {"worker": workers, "floor": floors},
                    "measured_at": datetime.now(UTC).isoformat(),
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
