"""Benchmark of the REST API: POST /predict latency (p50/p99) and requests/s over real HTTP.

    uv run python -m bench.bench_api [--model DIR] [--features DIR] [--requests 3000] [--quick]

A real ``credit-scorer api serve`` process (uvicorn + uvloop + httptools, one process) on a loopback
port, a real ``redis-server`` holding the feature build (default ``var/features``, the real sample's:
one vector per client), and the model (``--model DIR``, else the newest under var/models, else
var/bench/stream-model, else a 500-tree model trained once on var/features). The load comes from this
second process: a small asyncio HTTP/1.1 keep-alive client (raw sockets, so the client's own cost stays
small), random cached clients, a bounded number of requests and a time limit per phase. Side by side:

* 1 connection (sequential: pure latency) vs 8 concurrent connections (throughput);
* reasons on every answer (the API default) vs none (a second server with CREDIT_SCORER_API__REASONS=none);
* where the time goes, measured in-process: the one-MGET feature fetch and ``decide`` alone.

Anchor: the original project's API took 218 ms per inference with a < 10 ms feature lookup; goal: p99
≤ 5 ms. Writes bench/results/api.json.
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
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from credit_scorer.settings import PROJECT_ROOT, RedisSettings, Settings
from devtools.launchers import RedisServer, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "api.json"
BENCH_DIR = PROJECT_ROOT / "var" / "bench"
ANCHOR_INFERENCE_S = 0.218
GOAL_P99_S = 0.005
PREFIX = "bench-api"
PHASE_LIMIT_S = 60.0


# --- setup ------------------------------------------------------------------------------------------
def bench_model(explicit: Path | None, features: Path) -> Path:
    from scoring.model import resolve_model_dir

    if explicit is not None:
        return resolve_model_dir(PROJECT_ROOT, explicit)
    for folder in (PROJECT_ROOT / "var" / "models", BENCH_DIR / "stream-model"):
        if folder.is_dir() and any(folder.iterdir()):
            return resolve_model_dir(folder)
    from training.train import TrainConfig, train_model

    print("training a 500-tree model on the feature build (once) …", flush=True)
    cfg = TrainConfig(folds=2, max_rounds=500, early_stopping=0, plots=False, params={"learning_rate": 0.05})
    return train_model(features, BENCH_DIR / "stream-model", cfg).model_dir


class ApiServer:
    """``credit-scorer api serve`` as a child process, healthy before use, terminated after."""

    def __init__(self, settings: Settings, log: Path) -> None:
        from devtools.harness import settings_env

        self.port = free_port()
        self.env = {
            **os.environ,
            **settings_env(settings),
            "CREDIT_SCORER_API__PORT": str(self.port),
            "CREDIT_SCORER_API__REASONS": settings.api.reasons,
            "CREDIT_SCORER_LOG_LEVEL": "WARNING",
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ApiServer:
        exe = Path(sys.executable).with_name("credit-scorer")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [str(exe), "api", "serve"], env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2)
                if response.status_code == 200:
                    return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"API not healthy: {response.text}")
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"API did not start: {self.log.read_text()[-2000:]}") from None
            time.sleep(0.1)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- load -------------------------------------------------------------------------------------------
def request_bytes(body: bytes) -> bytes:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


async def connection(port: int, requests: list[bytes], latencies: list[float], statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    deadline = time.monotonic() + PHASE_LIMIT_S
    try:
        for raw in requests:
            started = time.perf_counter()
            writer.write(raw)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses.append(int(status_line.split()[1]))
            if time.monotonic() > deadline:
                break
    finally:
        writer.close()


async def load(port: int, ids: np.ndarray, n: int, concurrency: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    picks = rng.choice(ids, size=n)
    bodies = [request_bytes(orjson.dumps({"sk_id_curr": int(i)})) for i in picks]
    warm = [request_bytes(orjson.dumps({"sk_id_curr": int(i)})) for i in picks[: min(200, n)]]
    await connection(port, warm, [], [])
    latencies: list[float] = []
    statuses: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(connection(port, bodies[c::concurrency], latencies, statuses) for c in range(concurrency))
    )
    wall = time.perf_counter() - started
    lat = np.asarray(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "non_200": sum(s != 200 for s in statuses),
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p90_ms": float(np.percentile(lat, 90) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "max_ms": float(lat.max() * 1e3),
    }


# --- in-process components ----------------------------------------------------------------------------
async def components(model: Any, redis: RedisSettings, ids: np.ndarray, n: int) -> dict[str, float]:
    from feature_cache.store import RedisFeatureStore, create_redis_client
    from scoring.decide import DecideOptions, ScoringInput, decide
    from scoring.prepared import PreparedModel

    prepared = PreparedModel(model)
    options = DecideOptions("all", 3)
    client = create_redis_client(redis)
    store = RedisFeatureStore(client, redis.key_prefix)
    fetch_s: list[float] = []
    score_s: list[float] = []
    rng = np.random.default_rng(1)
    try:
        for sk_id in rng.choice(ids, size=n).tolist():
            t0 = time.perf_counter()
            cached = await store.fetch([sk_id], version=model.feature_version)
            t1 = time.perf_counter()
            decide(prepared, [ScoringInput(sk_id, {})], cached, options=options)
            t2 = time.perf_counter()
            fetch_s.append(t1 - t0)
            score_s.append(t2 - t1)
    finally:
        await client.aclose()
    return {
        "fetch_median_ms": statistics.median(fetch_s) * 1e3,
        "score_all_reasons_median_ms": statistics.median(score_s) * 1e3,
    }


# --- main -------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    from devtools.harness import load_cache
    from feature_cache.loader import read_feature_table
    from scoring.model import load_model

    features = Path(args.features)
    model_dir = bench_model(Path(args.model) if args.model else None, features)
    model = load_model(model_dir)
    ids, _matrix = read_feature_table(features / "features.parquet", model.schema)
    n = 500 if args.quick else args.requests
    result: dict[str, Any] = {
        "model": {
            "dir": str(model_dir),
            "version": model.model_version,
            "trees": model.booster.num_trees(),
            "features": len(model.schema),
        },
        "clients_cached": len(ids),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "anchor_inference_ms": ANCHOR_INFERENCE_S * 1e3,
        "goal_p99_ms": GOAL_P99_S * 1e3,
    }
    with RedisServer() as redis:
        print(f"loading {len(ids):,} client vectors into Redis …", flush=True)
        load_cache(redis.url, PREFIX, features)
        redis_settings = Settings().redis.model_copy(update={"url": redis.url, "key_prefix": PREFIX})
        base = Settings()
        settings = base.model_copy(
            update={"redis": redis_settings, "model": base.model.model_copy(update={"path": model_dir})}
        )
        result["components"] = asyncio.run(components(model, redis_settings, ids, min(n, 2000)))
        phases: dict[str, Any] = {}
        for reasons in ("all", "none"):
            cfg = settings.model_copy(update={"api": settings.api.model_copy(update={"reasons": reasons})})
            with ApiServer(cfg, BENCH_DIR / "api-logs" / f"api-{reasons}.log") as server:
                for concurrency in (1, 8) if reasons == "all" else (1,):
                    name = f"reasons_{reasons}_c{concurrency}"
                    print(f"phase {name}: {n:,} requests …", flush=True)
                    phases[name] = asyncio.run(load(server.port, ids, n, concurrency, seed=concurrency))
        result["phases"] = phases
    return result


def report(result: dict[str, Any]) -> None:
    m = result["model"]
    c = result["components"]
    print(
        f"\nmodel {m['version']}: {m['trees']} trees, {m['features']} features; "
        f"{result['clients_cached']:,} clients cached"
    )
    print(
        f"in-process: feature fetch (1 MGET) median {c['fetch_median_ms']:.3f} ms, "
        f"decide (batch of one) with reasons {c['score_all_reasons_median_ms']:.3f} ms"
    )
    print(f"{'phase':<20}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}{'non-200':>9}")
    for name, p in result["phases"].items():
        print(
            f"{name:<20}{p['requests_per_s']:>10,.0f}{p['p50_ms']:>10.2f}{p['p90_ms']:>10.2f}"
            f"{p['p99_ms']:>10.2f}{p['max_ms']:>10.2f}{p['non_200']:>9}"
        )
    one = result["phases"]["reasons_all_c1"]
    eight = result["phases"]["reasons_all_c8"]
    none = result["phases"]["reasons_none_c1"]
    ratios = {
        "anchor_218ms_over_p50": ANCHOR_INFERENCE_S * 1e3 / one["p50_ms"],
        "p99_over_goal_5ms": one["p99_ms"] / (GOAL_P99_S * 1e3),
        "throughput_c8_over_c1": eight["requests_per_s"] / one["requests_per_s"],
        "p50_reasons_all_over_none": one["p50_ms"] / none["p50_ms"],
    }
    result["ratios"] = ratios
    print("ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
    verdict = "met" if one["p99_ms"] <= GOAL_P99_S * 1e3 else "NOT met"
    print(f"goal p99 <= 5 ms (1 connection): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Model directory (default: newest under var/models, …).")
    parser.add_argument("--features", default=str(PROJECT_ROOT / "var" / "features"), help="Feature build.")
    parser.add_argument("--requests", type=int, default=3000, help="Requests per phase.")
    parser.add_argument("--quick", action="store_true", help="500 requests per phase (smoke run).")
    args = parser.parse_args()
    if not (Path(args.features) / "features.parquet").is_file():
        sys.exit(f"error: {args.features}/features.parquet not found (run `credit-scorer features build`)")
    result = run(args)
    report(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
