"""Benchmark of the stream worker, side by side in one run (real Tansu broker, real redis-server).

    uv run python -m bench.bench_stream [--model DIR] [--events 100000] [--runs 3] [--quick]

* Sustained decisions/s of ONE worker process (``credit-scorer stream worker``) draining a pre-filled
  applications topic: the ``batch`` engine (default) vs the ``faust`` engine (a Faust agent with
  ``take_events``) vs a naive one-event-at-a-time worker (:mod:`bench.stream_naive`) vs the same
  pipeline in quix-streams (:mod:`bench.stream_quix`, ``--engines …,quix``: run the bench with
  ``uv run --with quixstreams==3.28.1``). Rate = decisions
  between the first and the last decision's broker timestamp.
* The cost of reasons: the batch engine with reason codes on every REFUS and REFER (default: exact
  TreeSHAP; the worker decides with the committed policy: settings.policy) vs none, vs the older path
  attribution (``batch_path_reasons``); of counter-offers: on every REFUS by score (default) vs off
  (``batch_no_offers``); of a challenger: the same model files scored again in the shadow of the
  champion, on the same vectors, its decisions published to a shadow topic (``batch_challenger``).
* The cost of the whole application form: the batch engine on full-form events (every application
  column of the row, what producers send since contract version 2: ``batch``) vs the 8-field events
  of version 1 (``batch_8_fields``), same clients, same cache (``--forms``).
* Event→decision latency p50/p99 at fixed offered loads of 1,000 and 5,000 events/s (batch engine):
  "decided" = the decision's own ``latency.total_s`` (event time → decision built) and "received" =
  event time → the decision read by a downstream consumer. The load comes from a producer process and
  the decisions are read by a collector process (:mod:`bench.stream_load`), neither in the worker's
  process: payloads pre-encoded, ``event_time`` stamped when sent, ``send_batch`` per partition (more
  than one when a tick overflows a producer batch) every ``--tick-ms`` (5 ms: 200 producer batches/s).
  "broker floor" = the same load read straight back from the applications topic without a worker (one
  hop instead of two: what Tansu itself adds).

Model: ``--model DIR``, else the newest under var/models, else a 500-tree model trained once on
var/features (the real sample's feature build) into var/bench/stream-model. Events are the
application_test rows of the raw sample, as the producer sends them (whole forms, or their 8 version-1
fields); without the raw files, the feature table's event fields. Tansu's memory storage never frees
records: the broker is restarted between phases. Goals: ≥ 20,000 decisions/s per worker (8-field
events), ≥ 15,000 with full-form events, p99 ≤ 15 ms at 5,000/s, reasons on every REFUS.
Writes bench/results/stream.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.stream_forms import form_payloads, legacy_fields
from bench.stream_load import audit, lat_rows, median_latency, offer_and_collect
from credit_scorer.settings import PROJECT_ROOT, RedisSettings, Settings
from devtools.harness import (
    KafkaTopics,
    WorkerProcess,
    application_payloads,
    collect,
    create_topics,
    produce_payloads,
    settings_env,
    settings_for,
)
from devtools.launchers import RedisServer, TansuBroker, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "stream.json"
BENCH_DIR = PROJECT_ROOT / "var" / "bench"
LOGS = BENCH_DIR / "stream-logs"


# --- setup ------------------------------------------------------------------------------------------
def bench_model(explicit: Path | None) -> Path:
    from scoring.model import resolve_model_dir

    if explicit is not None:
        return resolve_model_dir(PROJECT_ROOT, explicit)
    models = PROJECT_ROOT / "var" / "models"
    if models.is_dir() and any(models.iterdir()):
        return resolve_model_dir(models)
    own = BENCH_DIR / "stream-model"
    if own.is_dir() and any(own.iterdir()):
        return resolve_model_dir(own)
    from training.train import TrainConfig, train_model

    print("training a 500-tree model on var/features (once) …", flush=True)
    cfg = TrainConfig(folds=2, max_rounds=500, early_stopping=0, plots=False, params={"learning_rate": 0.05})
    return train_model(PROJECT_ROOT / "var" / "features", own, cfg).model_dir


def event_rows(features_dir: Path, schema: Any) -> tuple[np.ndarray, np.ndarray, list[int]]:
    import polars as pl

    from feature_cache.loader import read_feature_table

    ids, matrix = read_feature_table(features_dir / "features.parquet", schema)
    is_train = pl.read_parquet(features_dir / "features.parquet", columns=["IS_TRAIN"])["IS_TRAIN"].to_numpy()
    rows = np.flatnonzero(~is_train).tolist() or list(range(len(ids)))
    return ids, matrix, rows


class Env:
    def __init__(
        self, model_dir: Path, redis: RedisServer, broker: TansuBroker, overrides: dict[str, str]
    ) -> None:
        self.model_dir, self.redis, self.broker = model_dir, redis, broker
        self.overrides = overrides  # stream settings of every worker (experiments)
        self.n = 0

    def settings(
        self, partitions: int = 4, challenger: bool = False, **stream: Any
    ) -> tuple[Settings, KafkaTopics]:
        """``challenger``: the same model files scored again in the shadow (model.challenger_path), its
        decisions on a shadow topic of their own."""
        self.n += 1
        sfx = f"{os.getpid()}-{self.n}"
        topics = KafkaTopics(
            f"apps-{sfx}", f"dec-{sfx}", f"dlq-{sfx}", f"bench-{sfx}", partitions, f"rev-{sfx}"
        )
        names = [topics.applications, topics.decisions, topics.dead_letters, f"rev-{sfx}", f"shadow-{sfx}"]
        asyncio.run(create_topics(self.broker.bootstrap_servers, names, partitions))
        s = settings_for(
            self.broker.bootstrap_servers, topics, metrics_port=free_port(), **{**self.overrides, **stream}
        )
        return s.model_copy(
            update={
                "redis": RedisSettings(url=self.redis.url, key_prefix="bench"),
                "kafka": s.kafka.model_copy(update={"shadow_topic": f"shadow-{sfx}"}),
                "model": s.model.model_copy(
                    update={"path": self.model_dir, "challenger_path": self.model_dir if challenger else None}
                ),
                "log_level": "WARNING",
            }
        ), topics


def start_worker(settings: Settings, engine: str, log: Path) -> Any:
    if engine in ("naive", "quix"):  # quix: run the bench with `uv run --with quixstreams` (stream_quix)
        env = {**os.environ, **settings_env(settings)}
        out = open(log, "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", f"bench.stream_{engine}"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()
        return proc
    return WorkerProcess(settings, engine, log).start().proc


def stop(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# --- phases -----------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drain(bs: str, topic: str, n: int, pid: int, timeout_s: float = 900) -> dict[str, Any]:
    """Read decisions until ``n`` distinct keys; CPU and wall time from the first to the last one."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bs, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    keys: set[bytes] = set()
    stamps: list[int] = []
    refus = with_reasons = with_offer = 0
    cpu0 = t0 = 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while len(keys) < n and time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=200, max_records=20_000)
            if data and not stamps:
                cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            for msgs in data.values():
                for m in msgs:
                    keys.add(m.key)
                    stamps.append(m.timestamp)
                    if len(stamps) % 5 == 0:  # sample the decisions' content
                        d = orjson.loads(m.value)
                        if d["decision"] in ("REFUS", "REFER"):  # both carry reason codes
                            refus += 1
                            with_reasons += bool(d["reason_codes"])
                            with_offer += d.get("counter_offer") is not None
        cpu1, t1 = cpu_seconds(pid), time.perf_counter()
    finally:
        await consumer.stop()
    span = max(1e-3, (max(stamps) - min(stamps)) / 1000) if stamps else float("nan")
    return {
        "decisions": len(stamps),
        "distinct": len(keys),
        "seconds": round(span, 3),
        "decisions_per_s": round((len(stamps) - 1) / span, 1),
        "worker_cpu_s": round(cpu1 - cpu0, 3),
        "decisions_per_cpu_s": round(len(stamps) / max(1e-3, cpu1 - cpu0), 1),
        "collector_wall_s": round(t1 - t0, 3),
        "refusal_or_refer_share": round(refus / max(1, len(stamps) // 5), 4),
        "refusals_with_reasons": round(with_reasons / max(1, refus), 4),
        "refusals_with_counter_offer": round(with_offer / max(1, refus), 4),
    }


def sustained(
    env: Env, payloads: list[tuple[bytes | None, bytes]], engine: str, **stream: Any
) -> dict[str, Any]:
    """Pre-fill, start one worker, measure from its first to its last decision (wall and worker CPU)."""
    settings, topics = env.settings(**stream)
    bs = env.broker.bootstrap_servers
    asyncio.run(produce_payloads(bs, topics.applications, payloads))
    proc = start_worker(settings, engine, LOGS / f"{topics.group}-{engine}.log")
    try:
        result = asyncio.run(_drain(bs, topics.decisions, len(payloads), proc.pid))
        if settings.model.challenger_path is not None:  # the shadow decisions were made, not skipped
            shadow = asyncio.run(collect(bs, settings.kafka.shadow_topic, len(payloads), timeout_s=120))
            result["shadow_decisions"] = len({r.key for r in shadow})
    finally:
        stop(proc)
    return {"engine": engine, "events": len(payloads), **result}


def latency(
    env: Env, docs: list[dict[str, Any]], rate: float, seconds: float, tick_ms: float
) -> dict[str, Any]:
    """One warm batch-engine worker; events offered at ``rate``/s for ``seconds`` by a producer process
    (bench.stream_load offer) while a collector process reads the decisions (bench.stream_load collect):
    neither shares a process with the worker or with the other."""
    settings, topics = env.settings()
    bs = env.broker.bootstrap_servers
    proc = start_worker(settings, "batch", LOGS / f"{topics.group}-latency.log")
    n = int(rate * seconds)
    try:
        warm = [(b"warm-%d" % i, orjson.dumps(d)) for i, d in enumerate(docs[:500])]
        asyncio.run(produce_payloads(bs, topics.applications, warm))
        asyncio.run(collect(bs, topics.decisions, len(warm), timeout_s=120))  # worker up, group joined, warm
        offered, got = offer_and_collect(
            bs, topics.applications, topics.decisions, lat_rows(docs, n), rate, seconds, tick_ms, LOGS
        )
        dead = asyncio.run(collect(bs, topics.dead_letters, to_end=True, timeout_s=30))
        acked = offered.pop("acked")
        on_topic = asyncio.run(audit(bs, topics.applications, topics.decisions, topics.group, n, acked=acked))
    finally:
        stop(proc)
    if got["decisions"] < n or on_topic["undecided"] or got["offset_gaps"] or on_topic["acked_anomalies"]:
        print(
            f"  SHORT RUN: collected {got['decisions']} of {n}, read to {got['read_to']}, offset gaps "
            f"{got['offset_gaps']}; "
            f"on the topics: {on_topic}",
            flush=True,
        )
    stage_ms = got["stage_ms"]
    return {
        "offered_per_s": rate,
        "achieved_offer_per_s": offered["achieved_per_s"],
        "offer_ack_ms": offered["ack_ms"],
        "offer_largest_tick": offered["largest_tick"],  # records due at once after the offerer's stall
        "events": n,
        "decisions": got["decisions"],  # distinct lat- keys read within the collector's deadline
        "on_topic": on_topic,  # re-read afterwards: applications, decisions, committed offsets
        "collector_offset_gaps": got["offset_gaps"],  # offsets the collector's fetches jumped over
        "dead_letters": len(dead),
        "decided_ms": stage_ms.pop("total_s"),
        "received_ms": got["received_ms"],
        "stage_ms": stage_ms,  # queue = event time → consumed by the worker
    }


def broker_floor(
    env: Env, docs: list[dict[str, Any]], rate: float, seconds: float, tick_ms: float
) -> dict[str, Any]:
    """No worker: the same offered load read straight back from the applications topic (one hop)."""
    _settings, topics = env.settings()
    n = int(rate * seconds)
    offered, got = offer_and_collect(
        env.broker.bootstrap_servers,
        topics.applications,
        topics.applications,
        lat_rows(docs, n),
        rate,
        seconds,
        tick_ms,
        LOGS,
    )
    return {
        "offered_per_s": rate,
        "achieved_offer_per_s": offered["achieved_per_s"],
        "offer_ack_ms": offered["ack_ms"],
        "events": n,
        "received_ms": got["received_ms"],
    }


# --- main -------------------------------------------------------------------------------------------
def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["decisions_per_s"] for r in runs]
    per_cpu = [r["decisions_per_cpu_s"] for r in runs]
    mid = sorted(runs, key=lambda r: r["decisions_per_s"])[len(runs) // 2]
    return {
        **mid,
        "decisions_per_s": round(statistics.median(rates), 1),
        "decisions_per_cpu_s": round(statistics.median(per_cpu), 1),
        "runs_per_s": rates,
        "runs_per_cpu_s": per_cpu,
    }


def _reasons_and_offers(results: dict[str, Any]) -> dict[str, float]:
    """batch (exact reasons, counter-offers) over path reasons and over no counter-offers."""
    b, bc = results["batch"]["decisions_per_s"], results["batch"]["decisions_per_cpu_s"]
    out: dict[str, float] = {}
    for other, key in (
        ("batch_path_reasons", "exact_vs_path_reasons"),
        ("batch_no_offers", "offers_on_vs_off"),
        ("batch_challenger", "without_vs_with_challenger"),
    ):
        if other in results:
            out[key] = round(b / results[other]["decisions_per_s"], 3)
            out[f"per_cpu_{key}"] = round(bc / results[other]["decisions_per_cpu_s"], 3)
    return out


def summarize(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, bool]]:
    """Side-by-side ratios and goal checks of whatever phases the results hold; printed."""
    ratios: dict[str, float] = {}
    goals: dict[str, bool] = {}
    if "batch" in results:
        b, bc = results["batch"]["decisions_per_s"], results["batch"]["decisions_per_cpu_s"]
        if "batch_8_fields" in results:
            v1 = results["batch_8_fields"]
            ratios["full_vs_8_fields"] = round(b / v1["decisions_per_s"], 3)
            ratios["per_cpu_full_vs_8_fields"] = round(bc / v1["decisions_per_cpu_s"], 3)
            goals["full_form_ge_15000"] = b >= 15_000
        for other in ("faust", "quix", "naive"):
            if other in results:
                ratios[f"batch_vs_{other}"] = round(b / results[other]["decisions_per_s"], 2)
                ratios[f"per_cpu_batch_vs_{other}"] = round(bc / results[other]["decisions_per_cpu_s"], 2)
        if "batch_no_reasons" in results:
            nr = results["batch_no_reasons"]
            ratios["reasons_cost"] = round(1 - b / nr["decisions_per_s"], 3)
            ratios["per_cpu_reasons_cost"] = round(1 - bc / nr["decisions_per_cpu_s"], 3)
        ratios |= _reasons_and_offers(results)
        goals["with_exact_reasons_ge_15000"] = b >= 15_000
        goals["decisions_per_s_ge_20000"] = b >= 20_000
        goals["reasons_on_every_refus"] = results["batch"]["refusals_with_reasons"] == 1.0
        goals["with_reasons_ge_10000"] = b >= 10_000
    if "latency_5000" in results:
        goals["p99_le_15ms_at_5000"] = results["latency_5000"]["received_ms"]["p99"] <= 15.0
    print("\nsustained decisions/s (median of runs) and decisions per worker CPU-second:")
    for name in (
        "batch",
        "batch_8_fields",
        "batch_no_reasons",
        "batch_path_reasons",
        "batch_no_offers",
        "batch_challenger",
        "faust",
        "quix",
        "naive",
    ):
        if name in results:
            r = results[name]
            print(
                f"  {name:18s} {r['decisions_per_s']:>10,.0f}/s  {r['decisions_per_cpu_s']:>10,.0f}/cpu-s  "
                f"runs={r['runs_per_s']}"
            )
    print(f"ratios: {ratios}")
    for key in sorted(k for k in results if k.startswith("latency_")):
        lat = results[key]
        dec, rec = lat["decided_ms"], lat["received_ms"]
        print(
            f"{key} (achieved {lat['achieved_offer_per_s']}/s): "
            f"decided p50={dec['p50']} p99={dec['p99']} ms; "
            f"received p50={rec['p50']} p99={rec['p99']} ms; queue p50={lat['stage_ms']['queue_s']['p50']} "
            f"p99={lat['stage_ms']['queue_s']['p99']} ms; missing {lat.get('missing')}"
        )
    for key in sorted(k for k in results if k.startswith("broker_floor_")):
        rec = results[key]["received_ms"]
        print(f"{key} (no worker, one produce → fetch hop): p50={rec['p50']} p99={rec['p99']} ms")
    print(f"goals: {goals}")
    return ratios, goals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--events", type=int, default=100_000, help="events per batch-engine run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each latency run")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (smoke test)")
    parser.add_argument(
        "--phases",
        default="sustained,latency",
        help="comma-separated subset of sustained,latency (a subset updates the existing results file)",
    )
    parser.add_argument("--tick-ms", type=float, default=5.0, help="latency: the producer sends every N ms")
    parser.add_argument("--rates", default="1000,5000", help="offered loads of the latency phase")
    parser.add_argument(
        "--engines", default="batch,batch_8_fields,batch_no_reasons,faust,naive", help="sustained runs"
    )
    parser.add_argument(
        "--raw", type=Path, default=None, help="raw sample of the events (default: settings.paths.raw_dir)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="stream setting of every worker"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (experiments elsewhere)")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.runs, args.seconds = 10_000, 1, 3.0
    LOGS.mkdir(parents=True, exist_ok=True)

    from devtools.harness import load_cache
    from scoring.model import load_model

    model_dir = bench_model(args.model)
    model = load_model(model_dir)
    features_dir = PROJECT_ROOT / "var" / "features"
    ids, matrix, rows = event_rows(features_dir, model.schema)
    print(
        f"model {model.model_version}: {model.booster.num_trees()} trees, {len(model.schema)} features; "
        f"{len(rows):,} event rows",
        flush=True,
    )
    raw_dir = args.raw or Settings().paths.raw_dir
    payloads = form_payloads(raw_dir, args.events, "full")
    v1_payloads = form_payloads(raw_dir, args.events, "8")
    if payloads is None or v1_payloads is None:
        print(f"no application_test file in {raw_dir}: events from the feature table", flush=True)
        payloads = application_payloads(
            model.schema, ids, matrix, [rows[i % len(rows)] for i in range(args.events)], id_prefix="b"
        )
        v1_payloads = legacy_fields(payloads)
    sizes = {"full": payloads, "8_fields": v1_payloads}
    print(
        "event bytes (mean): "
        + ", ".join(f"{k} {sum(len(v) for _, v in p) / len(p):,.0f}" for k, p in sizes.items())
    )
    docs = [orjson.loads(v) for _, v in payloads[:5000]]
    small = max(2000, args.events // 5)

    phases = set(args.phases.split(","))
    results: dict[str, Any] = {}
    if phases != {"sustained", "latency"} and args.out.exists():
        results = dict(json.loads(args.out.read_text())["results"])  # update only the phases run now
    with RedisServer() as redis:
        load_cache(redis.url, "bench", features_dir)
        broker = TansuBroker().start()
        try:
            env = Env(model_dir, redis, broker, dict(kv.split("=", 1) for kv in args.set))
            full, v1 = payloads, v1_payloads
            plan: list[tuple[str, str, int, dict[str, Any], list[tuple[bytes | None, bytes]]]] = [
                ("batch", "batch", args.events, {}, full),
                ("batch_8_fields", "batch", args.events, {}, v1),
                ("batch_no_reasons", "batch", args.events, {"reasons": "none"}, full),
                ("batch_path_reasons", "batch", args.events, {"attribution": "path"}, full),
                ("batch_no_offers", "batch", args.events, {"counter_offers": False}, full),
                ("batch_challenger", "batch", args.events, {"challenger": True}, full),
                ("faust", "faust", small, {}, full),
                ("naive", "naive", max(1000, small // 4), {}, full),
                ("quix", "quix", max(1000, small // 4), {}, full),
            ]
            engines = set(args.engines.split(","))
            chosen = [p for p in plan if p[0] in engines] if "sustained" in phases else []
            runs: dict[str, list[dict[str, Any]]] = {p[0]: [] for p in chosen}
            for r in range(args.runs):  # interleaved, so a load change on the shared machine hits all
                for name, engine, n, stream, events in chosen:
                    broker.restart()  # Tansu's memory storage never frees
                    runs[name].append(sustained(env, events[:n], engine, **stream))
                    rate = runs[name][-1]["decisions_per_s"]
                    print(f"  {name} run {r + 1}: {rate:,.0f} decisions/s", flush=True)
            results |= {name: median_run(done) for name, done in runs.items()}
            for rate in [float(r) for r in args.rates.split(",")] if "latency" in phases else ():
                lat_runs = []
                for r in range(args.runs):
                    broker.restart()
                    lat_runs.append(latency(env, docs, rate, args.seconds, args.tick_ms))
                    print(f"  latency at {rate:,.0f}/s run {r + 1}: {lat_runs[-1]}", flush=True)
                results[f"latency_{int(rate)}"] = median_latency(lat_runs)
                floors = []
                for r in range(args.runs):
                    broker.restart()
                    floors.append(broker_floor(env, docs, rate, args.seconds, args.tick_ms))
                    print(f"  broker floor at {rate:,.0f}/s run {r + 1}: {floors[-1]}", flush=True)
                results[f"broker_floor_{int(rate)}"] = {
                    "received_ms": {
                        q: round(statistics.median(f["received_ms"][q] for f in floors), 2)
                        for q in floors[0]["received_ms"]
                    },
                    "runs": floors,
                }
        finally:
            broker.stop()

    ratios, goals = summarize(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "stream",
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "loadavg_at_end": os.getloadavg(),
                },
                "model": {
                    "version": model.model_version,
                    "trees": model.booster.num_trees(),
                    "features": len(model.schema),
                },
                "args": vars(args) | {"model": str(model_dir)},
                "event_bytes": {k: round(sum(len(v) for _, v in p) / len(p)) for k, p in sizes.items()},
                "results": results,
                "ratios": ratios,
                "goals": goals,
                "measured_at": datetime.now(UTC).isoformat(),
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
