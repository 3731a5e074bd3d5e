"""Benchmark of the client-feature cache: bulk-load rate and batch-read latency.

    uv run python -m bench.bench_redis_cache [--clients 356255] [--features 250] [--quick]

Starts its own redis-server on a free port, generates a full-size-like random feature table (float32,
~60 % canonical NaN like the real build), then measures:

* load rate (clients/s, median of repeats): MSETs streamed on one connection (default) vs MSET +
  Lua EXPIRE (with a TTL),
  and the end-to-end ``load_features`` from a parquet file (what ``credit-scorer cache load`` does);
* batch-read latency p50/p99 of ``RedisFeatureStore.fetch`` (``fetch_version``: the product's
  pipelined path, :mod:`feature_cache.mget`) for 1, 100 and 500 ids (5 % unknown), side by side
  with: the same store over redis-py's asyncio client (``fetch_version_redis_py``), the live-version
  path (Lua), the pure-Python RESP parser instead of hiredis, a compact encoding (NaN bitmap + non-NaN
  values), a non-blocking connection pool, a minimal asyncio protocol + hiredis without the store, and
  the raw-socket floor (server + loopback, blocking);
* client and server CPU per client / per call next to every wall-clock number: on a shared machine
  CPU time is the more stable measure, and ``CPU-bound rate`` is what the load reaches when the
  loader and redis-server each have a core (they overlap).

Goals (issue 3): load ≥ 200,000 clients/s; p99 < 1 ms for 100 ids on loopback.
Writes bench/results/redis_cache.json. The instruments and the alternatives measured side by side are in
``bench/redis_cache_tools.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import redis
import redis.asyncio

from bench.redis_cache_tools import (
    CpuMeter,
    MgetProtocol,
    batches,
    compact_decode,
    compact_encode,
    interleaved,
    median_load,
    raw_socket_floor,
)
from credit_scorer.settings import RedisSettings
from devtools.launchers import RedisServer
from feature_cache.keys import vector_key_prefix, vector_keys
from feature_cache.loader import load_features, write_vectors
from feature_cache.store import (
    RedisFeatureStore,
    create_redis_client,
    create_sync_redis_client,
    decode_vectors,
)
from feature_cache.versions import switch_version
from feature_loader.feature_schema import FeatureField, FeatureKind, FeatureSchema, FeatureSource

RESULTS = Path(__file__).resolve().parent / "results" / "redis_cache.json"
BATCH_SIZES = (1, 100, 500)
PREFIX = "bench"


# --- data --------------------------------------------------------------------------------------------------
def make_schema(n_features: int) -> FeatureSchema:
    fields = [FeatureField(name=f"EVENT_{i}", source=FeatureSource.EVENT) for i in range(8)]
    fields.append(
        FeatureField(
            name="NAME_CONTRACT_TYPE",
            kind=FeatureKind.CATEGORICAL,
            source=FeatureSource.EVENT,
            categories=("Cash loans", "Revolving loans"),
        )
    )
    fields += [FeatureField(name=f"RATIO_{i}", source=FeatureSource.DERIVED) for i in range(6)]
    fields += [FeatureField(name=f"AGG_{i}") for i in range(n_features - len(fields))]
    return FeatureSchema(fields=tuple(fields))


def make_table(
    n_clients: int, n_features: int, nan_share: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.arange(100_002, 100_002 + n_clients, dtype=np.int64)
    matrix = rng.standard_normal((n_clients, n_features), dtype=np.float32)
    matrix[rng.random((n_clients, n_features), dtype=np.float32) < nan_share] = np.nan
    return ids, matrix


def compact_head(version: str) -> bytes:
    """Key prefix of the compact-encoding keyspace (same clients as the product's, another encoding)."""
    return b"bench-compact:fv:" + version.encode() + b":"


# --- main -----------------------------------------------------------------------------------------------
def run(n_clients: int, n_features: int, nan_share: float, iterations: int, repeats: int) -> dict[str, Any]:
    schema = make_schema(n_features)
    ids, matrix = make_table(n_clients, n_features, nan_share)
    version = schema.version
    results: dict[str, Any] = {
        "clients": n_clients,
        "features": n_features,
        "nan_share": nan_share,
        "value_bytes": n_features * 4,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": os.getloadavg()[0],
        },
    }
    with RedisServer() as server:
        settings = RedisSettings(url=server.url, key_prefix=PREFIX)
        sync = create_sync_redis_client(settings)
        assert isinstance(sync, redis.Redis)  # one node (bench_redis_cluster compares with a cluster)
        sync.config_set("save", "")
        meter = CpuMeter(sync)
        results["load_clients_per_s"] = measure_loads(sync, schema, ids, matrix, meter, repeats)
        switch_version(sync, PREFIX, version)
        results["redis_used_memory_mb"] = sync.info("memory")["used_memory"] / 1e6
        results["compact_mean_value_bytes"] = load_compact_keyspace(sync, version, ids, matrix)
        inputs = {n: batches(ids, n, iterations + 50, seed=n) for n in BATCH_SIZES}
        reads = asyncio.run(measure_reads(server, settings, version, n_features, inputs, meter))
        add_floor_and_ratios(reads, server.port or 0, version, inputs, meter)
        results["read_latency"] = reads
        results["machine"]["loadavg_1m_at_end"] = os.getloadavg()[0]
        sync.close()
    return results


def measure_loads(
    sync: redis.Redis,
    schema: FeatureSchema,
    ids: np.ndarray,
    matrix: np.ndarray,
    meter: CpuMeter,
    repeats: int,
) -> dict[str, Any]:
    """Load rates: MSETs streamed (the loader's default), MSETs + Lua EXPIRE (with a TTL), and the
    end-to-end load from a parquet file (what ``credit-scorer cache load`` does); ratios to the first."""
    n_clients = len(ids)

    def timed_write(**kw: Any) -> float:
        summary = write_vectors(sync, PREFIX, schema, ids, matrix, **kw)
        return summary.clients_per_s

    load: dict[str, Any] = {}
    load["mset_pipeline"] = median_load(repeats, timed_write, sync.flushall, meter, n_clients)
    load["mset_then_lua_expire_ttl"] = median_load(
        repeats, lambda: timed_write(ttl_s=86_400), sync.flushall, meter, n_clients
    )
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        folder = Path(tmp)
        frame = pl.DataFrame({"SK_ID_CURR": ids}).hstack(
            pl.from_numpy(matrix, schema=list(schema.names), orient="row")
        )
        frame.write_parquet(folder / "features.parquet")
        del frame
        schema.save(folder / "feature_schema.json")

        def end_to_end() -> float:
            t0 = time.perf_counter()
            summary = load_features(sync, folder, PREFIX)
            return summary.clients / (time.perf_counter() - t0)

        load["load_features_from_parquet"] = median_load(repeats, end_to_end, sync.flushall, meter, n_clients)
    base = load["mset_pipeline"]["median"]
    for row in load.values():
        row["ratio_vs_mset"] = row["median"] / base
    return load


def load_compact_keyspace(sync: redis.Redis, version: str, ids: np.ndarray, matrix: np.ndarray) -> float:
    """Write every client again in the compact encoding (checked bit-exact first); its mean value size."""
    head = compact_head(version)
    encoded = compact_encode(matrix)
    check, _ = compact_decode(list[bytes | None](encoded[:1_000]), matrix.shape[1])
    assert np.array_equal(check.view(np.uint32), matrix[:1_000].view(np.uint32)), "compact codec not exact"
    mean_bytes = float(np.mean([len(v) for v in encoded[:10_000]]))
    pipe = sync.pipeline(transaction=False)
    for start in range(0, len(ids), 1_000):
        args: list[Any] = []
        for i in range(start, min(start + 1_000, len(ids))):
            args += [b"%b%d" % (head, ids[i]), encoded[i]]
        pipe.execute_command("MSET", *args)
        if len(pipe) >= 10:
            pipe.execute()
    pipe.execute()
    return mean_bytes


async def measure_reads(
    server: RedisServer,
    settings: RedisSettings,
    version: str,
    n_features: int,
    inputs: dict[int, list[np.ndarray]],
    meter: CpuMeter,
) -> dict[str, dict[str, Any]]:
    """Latency and CPU per batch size of the product's fetch and of each alternative, interleaved."""
    from redis._parsers import _AsyncRESP2Parser

    client = create_redis_client(settings)
    store = RedisFeatureStore(client, PREFIX)
    pipelined_store = RedisFeatureStore(client, PREFIX, pipelined=True)  # the product's hot path
    pure_pool = redis.asyncio.ConnectionPool.from_url(server.url, parser_class=_AsyncRESP2Parser)
    pure = redis.asyncio.Redis.from_pool(pure_pool)
    pure_store = RedisFeatureStore(pure, PREFIX)
    plain = redis.asyncio.Redis.from_url(server.url, max_connections=settings.max_connections)
    plain_store = RedisFeatureStore(plain, PREFIX)
    head = compact_head(version)

    async def compact_fetch(batch: np.ndarray) -> Any:
        keys = [b"%b%d" % (head, i) for i in batch.tolist()]
        values: Any = await client.mget(keys)
        return compact_decode(values, n_features)

    async def mget_only(batch: np.ndarray) -> Any:
        return await client.mget(vector_keys(PREFIX, version, batch))

    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(MgetProtocol, "127.0.0.1", server.port or 0)

    async def protocol_fetch(batch: np.ndarray) -> Any:
        return decode_vectors(await proto.call("MGET", *vector_keys(PREFIX, version, batch)), n_features)

    configs: dict[str, Callable[[np.ndarray], Awaitable[Any]]] = {
        "fetch_version": lambda b: pipelined_store.fetch(b, version=version),
        "fetch_version_redis_py": lambda b: store.fetch(b, version=version),
        "fetch_live_lua": store.fetch,
        "fetch_version_pure_python_parser": lambda b: pure_store.fetch(b, version=version),
        "fetch_version_plain_pool": lambda b: plain_store.fetch(b, version=version),
        "mget_only_no_decode": mget_only,
        "compact_encoding_fetch": compact_fetch,
        "mget_asyncio_protocol_hiredis": protocol_fetch,
    }
    reads: dict[str, dict[str, Any]] = {}
    for n in BATCH_SIZES:
        reads[str(n)] = await interleaved(configs, inputs[n], meter)
    await pipelined_store.aclose()
    await client.aclose()
    await pure.aclose()
    await plain.aclose()
    assert proto.transport is not None
    proto.transport.close()
    return reads


def add_floor_and_ratios(
    reads: dict[str, dict[str, Any]],
    port: int,
    version: str,
    inputs: dict[int, list[np.ndarray]],
    meter: CpuMeter,
) -> None:
    """The raw-socket floor beside each batch size's configs, then every p50 as a ratio to fetch_version."""
    head = vector_key_prefix(PREFIX, version)
    for n in BATCH_SIZES:
        keys = [[b"%b%d" % (head, i) for i in b.tolist()] for b in inputs[n]]
        meter.start()
        floor = raw_socket_floor(port, keys)
        reads[str(n)]["raw_socket_floor"] = {**floor, **meter.stop(len(keys))}  # incl. 50 warm-up
        base_p50 = reads[str(n)]["fetch_version"]["p50_ms"]
        for stats in reads[str(n)].values():
            stats["p50_ratio_vs_fetch_version"] = stats["p50_ms"] / base_p50


def report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(
        f"\nRedis feature cache: {results['clients']:,} clients × {results['features']} float32 features, "
        f"{results['nan_share']:.0%} NaN; load average {machine['loadavg_1m_at_start']:.1f} "
        f"→ {machine['loadavg_1m_at_end']:.1f} on {machine['cpus']} CPUs"
    )
    print(f"Redis memory after loads: {results['redis_used_memory_mb']:,.0f} MB")
    print(
        "\nLoad (clients/s)                 wall median  ratio vs MSET  client µs/cl  server µs/cl"
        "  CPU-bound rate"
    )
    for name, r in results["load_clients_per_s"].items():
        print(
            f"  {name:<30} {r['median']:>12,.0f}  {r['ratio_vs_mset']:>13.2f}  {r['client_cpu_us']:>12.2f}  "
            f"{r['server_cpu_us']:>12.2f}  {r['cpu_bound_clients_per_s']:>14,.0f}"
        )
    compact = results["compact_mean_value_bytes"]
    print(f"\nValue size: float32 {results['value_bytes']} B vs compact {compact:.0f} B (mean)")
    for n, rows in results["read_latency"].items():
        print(f"\nBatch of {n:<4} ids                      p50 ms    p99 ms  p50 ratio  client µs  server µs")
        for name, s in rows.items():
            print(
                f"  {name:<34} {s['p50_ms']:8.3f}  {s['p99_ms']:8.3f}  {s['p50_ratio_vs_fetch_version']:9.2f}"
                f"  {s['client_cpu_us']:9.0f}  {s['server_cpu_us']:9.0f}"
            )
    goal_load = results["load_clients_per_s"]["mset_pipeline"]["median"] >= 200_000
    goal_p99 = results["read_latency"]["100"]["fetch_version"]["p99_ms"] < 1.0
    print(
        f"\nGoals (wall clock): load ≥ 200k clients/s: {'met' if goal_load else 'MISSED'}; "
        f"p99 < 1 ms for 100 ids: {'met' if goal_p99 else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=356_255)
    parser.add_argument("--features", type=int, default=250)
    parser.add_argument(
        "--nan-share", type=float, default=0.6, help="Share of missing values (the real build: ~0.65)."
    )
    parser.add_argument("--iterations", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="Small run to check the benchmark itself.")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.iterations, args.repeats = 20_000, 200, 1
    results = run(args.clients, args.features, args.nan_share, args.iterations, args.repeats)
    report(results)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
