"""Soak benchmark: one stream worker fed a steady stream for minutes on the embedded stack (issue 11).

    uv run python -m bench.bench_soak [--minutes 10] [--rate 2000] [--engines batch,faust] [--model DIR]
                                      [--quick]  (one minute per engine)

For each engine, in sequence, on a FRESH Tansu broker and redis-server (Tansu's memory log never
shrinks, and it is the growing log that once stalled the worker):

* the feature cache (var/features) is loaded and ONE ``credit-scorer stream worker --engine E`` is
  started with the default settings: only the broker, Redis, model path and metrics port are set (web
  port 0); the long-poll ``fetch_max_wait_ms`` stays at its default;
* warm-up: ``credit-scorer stream produce <sample>/application_test.csv.gz --limit 1000 --rate 0``,
  then the worker's RSS at start;
* the stream, exactly as a user would run it: ``credit-scorer stream produce …/application_test.csv.gz
  --repeat --rate R --duration <minutes·60>`` in its own process;
* every 10 s: the worker's /metrics (decisions, dead letters, summed lag, long-poll, starved and stalled
  seconds, fetch recoveries by action) and the RSS and CPU share of the worker, Tansu and the producer
  (/proc), with the load average;
* when the producer ends: wait (5 min at most) until decisions + dead letters ≥ sent and the lag is 0;
  then stop the worker and audit the topics (:mod:`bench.soak_audit`): read back from the beginning by
  a group-less consumer with a long long-poll, reconciled by application id. The producer's ids are
  ``<run>-<sequence>`` and the sequence keeps counting across ``--repeat`` cycles, so ids never repeat:
  decided = distinct ids with a decision, duplicates = decision records beyond the first per id. The
  group's committed offsets are compared with the log ends;
* latency per minute of event time (from the first streamed event): "decided" = the decision's own
  ``latency.total_s`` (event time → decision built), "published" = the decision record's Kafka
  timestamp − event time, "queued" = the decision's ``latency.queue_s`` (event time → consumed by the
  worker); p50/p95/p99 (and every 10 s in the JSON).

Writes bench/results/soak.json (machine, load average, every sample) and prints a table. Worker, Tansu
and producer logs go to var/bench/soak-logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.bench_stream import bench_model
from bench.soak_audit import latency_buckets, read_back, reconcile
from bench.soak_probe import Sampler
from bench.soak_report import print_report, summarize
from bench.stream_load import committed_offsets
from credit_scorer.settings import DEFAULT_SAMPLE_DIR, PROJECT_ROOT, Settings
from devtools.harness import WorkerProcess, create_topics, load_cache
from devtools.launchers import RedisServer, TansuBroker, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
LOGS = PROJECT_ROOT / "var" / "bench" / "soak-logs"
SAMPLE_CSV = DEFAULT_SAMPLE_DIR / "application_test.csv.gz"
SAMPLE_EVERY_S = 10.0
WARMUP_EVENTS = 1000
DRAIN_TIMEOUT_S = 300.0
READ_TIMEOUT_S = 1200.0
_SENT = re.compile(r"^sent ([\d,]+) events .* in ([\d.]+)s: .* failed deliveries: ([\d,]+)", re.M)
_WORKER_NOTES = re.compile(r"fetches starved|no application decided|healthy again|WARNING|ERROR|Traceback")


# --- the stack --------------------------------------------------------------------------------------
def worker_settings(broker: TansuBroker, redis: RedisServer, model_dir: Path) -> Settings:
    """The defaults a user gets, pointed at this broker, Redis and model. Not harness.settings_for: it
    lowers the group and retry timeouts, and this run is about the defaults."""
    base = Settings()
    return base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap_servers}),
            "redis": base.redis.model_copy(update={"url": redis.url}),
            "model": base.model.model_copy(update={"path": model_dir}),
            "stream": base.stream.model_copy(update={"metrics_port": free_port(), "web_port": 0}),
        }
    )


def produce(settings: Settings, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """``credit-scorer stream produce <sample CSV> …`` as its own process, output to ``log``."""
    exe = Path(sys.executable).with_name("credit-scorer")
    kafka = settings.kafka
    cmd = [str(exe), "stream", "produce", str(SAMPLE_CSV), *options]
    cmd += ["--bootstrap-servers", kafka.bootstrap_servers, "--topic", kafka.applications_topic]
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)


def produced(proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """The producer's exit code and its own last "sent N events … failed deliveries: F" line."""
    found = _SENT.findall(log.read_text(errors="replace"))
    out: dict[str, Any] = {"exit": proc.returncode}
    if found:
        sent, seconds, failed = found[-1]
        out |= {"sent": int(sent.replace(",", "")), "seconds": float(seconds)}
        out |= {"failed": int(failed.replace(",", "")), "rate": round(out["sent"] / float(seconds), 1)}
    return out


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def worker_notes(log: Path, keep: int = 40) -> dict[str, Any]:
    """What the worker said about starved fetches, stalls and errors (first and last lines)."""
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if _WORKER_NOTES.search(ln)]
    return {
        "lines": len(lines),
        "fetches_starved": sum("fetches starved" in ln for ln in lines),
        "no_application_decided": sum("no application decided" in ln for ln in lines),
        "first": lines[: keep // 2],
        "last": lines[-keep // 2 :] if len(lines) > keep // 2 else [],
    }


# --- one engine -------------------------------------------------------------------------------------
def warm_up(
    settings: Settings, worker: WorkerProcess, sampler: Sampler, logs: dict[str, Path]
) -> dict[str, Any]:
    """Wait for the worker's metrics page, send the warm-up applications, wait for their decisions."""
    # The long-poll gauge is set once the consumer is built (both engines), unlike the page itself.
    up = sampler.watch(
        "boot",
        lambda _r: "credit_scorer_fetch_wait_seconds" in worker.metrics_text() or not worker.alive(),
        180,
        1.0,
    )
    if not up or not worker.alive():
        raise RuntimeError(f"the worker did not come up: see {logs['worker']}")
    proc = produce(settings, logs["producer"], "--limit", str(WARMUP_EVENTS), "--rate", "0")
    proc.wait(300)
    warm = produced(proc, logs["producer"])
    if warm.get("sent") != WARMUP_EVENTS:
        raise RuntimeError(f"warm-up producer: {warm}; see {logs['producer']}")
    if not sampler.watch("warmup", lambda r: r.get("decisions", 0) >= WARMUP_EVENTS, 180, 1.0):
        raise RuntimeError(f"the warm-up was not decided: see {logs['worker']}")
    return warm


def stream(
    settings: Settings, sampler: Sampler, logs: dict[str, Path], minutes: float, rate: float
) -> tuple[dict[str, Any], float]:
    """The producer CLI for ``minutes`` at ``rate``; samples until it exits. Returns its report and the
    wall-clock time it was launched at (every streamed event is stamped after it)."""
    launched = time.time()
    proc = produce(
        settings, logs["producer"], "--repeat", "--rate", f"{rate:g}", "--duration", f"{minutes * 60:g}"
    )
    sampler.pids["producer"] = proc.pid
    try:
        ended = sampler.watch(
            "stream", lambda _r: proc.poll() is not None, minutes * 60 + 180, SAMPLE_EVERY_S
        )
    finally:
        stop_process(proc)  # only when it overran its own --duration
    sampler.pids["producer"] = None
    return produced(proc, logs["producer"]) | {"ended_by_itself": ended}, launched


def run_engine(engine: str, model_dir: Path, minutes: float, rate: float) -> dict[str, Any]:
    """One engine on its own broker and Redis; a failure is recorded with what the worker said."""
    logs = {name: LOGS / f"{engine}-{name}.log" for name in ("worker", "tansu", "producer")}
    for path in logs.values():
        path.unlink(missing_ok=True)
    out: dict[str, Any] = {"engine": engine, "logs": {k: str(v) for k, v in logs.items()}}
    with RedisServer() as redis:
        broker = TansuBroker(log_path=logs["tansu"]).start()
        settings = worker_settings(broker, redis, model_dir)
        out["stream_settings"] = settings.stream.model_dump(
            include={"fetch_max_wait_ms", "fetch_max_wait_cap_ms", "batch_max", "batch_within_s"}
        )
        worker = WorkerProcess(settings, engine, logs["worker"])
        assert broker.process is not None
        sampler = Sampler(worker.metrics_text, {"worker": None, "tansu": broker.process.pid})
        try:
            out |= soak(settings, worker, sampler, logs, minutes, rate)
        except Exception as exc:  # recorded and reported; the next engine still runs
            out["error"] = f"{type(exc).__name__}: {exc}"
            print(f"  FAILED: {out['error']}", flush=True)
        finally:
            worker.kill()
            broker.stop()
    return out | {"worker_log": worker_notes(logs["worker"]), "samples": sampler.rows}


def soak(
    settings: Settings,
    worker: WorkerProcess,
    sampler: Sampler,
    logs: dict[str, Path],
    minutes: float,
    rate: float,
) -> dict[str, Any]:
    kafka = settings.kafka
    load_cache(settings.redis.url, settings.redis.key_prefix, settings.paths.features_dir)
    topics = [kafka.applications_topic, kafka.decisions_topic, kafka.dead_letter_topic, kafka.review_topic]
    asyncio.run(create_topics(kafka.bootstrap_servers, topics, kafka.partitions))
    worker.start()
    sampler.pids["worker"] = worker.pid
    warm = warm_up(settings, worker, sampler, logs)
    start = sampler.sample("start")  # after the warm-up, before the stream
    sent, launched = stream(settings, sampler, logs, minutes, rate)
    result = drain_and_audit(settings, worker, sampler, warm["sent"] + sent.get("sent", 0))
    times = result.pop("times")
    return result | {
        "producer": {"warmup": warm, "stream": sent},
        "stream_launched_at": launched,
        "latency_per_minute": latency_buckets(times, launched),
        "latency_per_10s": latency_buckets(times, launched, bucket_s=10),  # finer, to see a spike's shape
        "worker_rss_start_mb": start.get("worker_rss_mb"),
    }


def drain_and_audit(settings: Settings, worker: WorkerProcess, sampler: Sampler, sent: int) -> dict[str, Any]:
    """Wait until the worker has decided everything, stop it, read the topics back and reconcile."""
    t0 = time.monotonic()
    drained = sampler.watch(
        "drain",
        lambda r: r.get("decisions", 0) + r.get("dead_letters", 0) >= sent and r.get("lag") == 0,
        DRAIN_TIMEOUT_S,
        SAMPLE_EVERY_S,
    )
    drain_s = time.monotonic() - t0
    end = sampler.sample("end")
    exit_code = worker.terminate(timeout_s=60)
    kafka = settings.kafka
    print("  reading the topics back …", flush=True)
    back = asyncio.run(read_back(kafka.bootstrap_servers, kafka, READ_TIMEOUT_S))
    committed = asyncio.run(
        committed_offsets(kafka.bootstrap_servers, kafka.applications_topic, kafka.consumer_group)
    )
    after = sampler.sample("audit")
    log_end = back["reads"]["applications"]["log_end"]
    return {
        "sent": sent,
        "drained": drained,
        "drain_s": round(drain_s, 1),
        "end": end,
        "worker_exit": exit_code,
        "audit": reconcile(*back["counts"]) | {"reads": back["reads"]},
        "committed": {p: {"committed": committed.get(p), "log_end": log_end.get(p)} for p in sorted(log_end)},
        "times": back["times"],
        "tansu_rss_end_mb": end.get("tansu_rss_mb"),
        "tansu_rss_after_audit_mb": after.get("tansu_rss_mb"),
    }


# --- main -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--engines", default="batch,faust")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (experiments elsewhere)")
    parser.add_argument("--quick", action="store_true", help="one minute per engine (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if not SAMPLE_CSV.is_file():
        parser.error(f"the real sample is needed: {SAMPLE_CSV} not found")
    LOGS.mkdir(parents=True, exist_ok=True)
    model_dir = bench_model(args.model)
    machine = {
        "commit": _git_head(),  # the worker code measured (the branch's HEAD; "+dirty" if edited)
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }
    started = datetime.now(UTC)
    results = {}
    for engine in args.engines.split(","):
        print(f"\n=== {engine}: {args.minutes:g} min at {args.rate:,.0f}/s", flush=True)
        results[engine] = run_engine(engine, model_dir, args.minutes, args.rate)
    machine["loadavg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    try:
        summary = {engine: summarize(r) for engine, r in results.items()}
        print_report(summary)
    finally:  # the raw results are written even if summarizing them fails
        write_results(args, machine, model_dir, started, results, summary)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()


def _git_head() -> str:
    dirty = "+dirty" if _git("status", "--porcelain", "--untracked-files=no") else ""
    return _git("rev-parse", "--short", "HEAD") + dirty


def write_results(
    args: argparse.Namespace,
    machine: dict[str, Any],
    model_dir: Path,
    started: datetime,
    results: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    doc = {
        "benchmark": "soak",
        "machine": machine,
        "args": vars(args) | {"model": str(model_dir)},
        "started_at": started.isoformat(),
        "measured_at": datetime.now(UTC).isoformat(),
        "summary": summary,
        "results": results,
    }
    args.out.write_bytes(
        orjson.dumps(
            doc,
            default=str,
            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
