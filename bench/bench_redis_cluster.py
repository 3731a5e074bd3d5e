"""Benchmark: the feature cache on one Redis vs a three-node Redis Cluster, side by side in one run.

    uv run python -m bench.bench_redis_cluster [--clients 50000] [--features 250] [--quick]

Starts a redis-server and a local Redis Cluster (three primaries, :mod:`devtools.redis_cluster`) on free
ports, loads the same random feature table into both (``write_vectors``: MSETs on one node, SETs
streamed per node on the cluster), then reads random batches of 1, 100 and 500 ids (5 % unknown) with
``RedisFeatureStore.fetch`` — the configs take turns call by call (``bench.redis_cache_tools.
interleaved``):

* ``single_mget``: the product's single-node hot path (one pipelined ``MGET``);
* ``cluster_per_node_pipelines``: the product's cluster hot path (one pipeline of ``GET``s per node,
  the nodes in parallel: :class:`feature_cache.cluster.ClusterMget`);
* ``cluster_redis_py_mget_nonatomic``: redis-py's own cluster ``mget_nonatomic`` (one ``MGET`` per slot
  through its cluster pipeline).

p50/p99 wall latency, client CPU and server CPU (all nodes summed) per batch. Every node and the client
share this machine's cores, so the cluster cannot show its real gain (more cores, more memory); what it
shows is the price of the spread per batch. Writes bench/results/redis_cluster.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

from bench.bench_redis_cache import PREFIX, make_schema, make_table
from bench.redis_cache_tools import CpuMeter, batches, interleaved
from credit_scorer.settings import RedisSettings
from devtools.launchers import RedisServer
from devtools.redis_cluster import LocalRedisCluster
from feature_cache.loader import write_vectors
from feature_cache.store import RedisFeatureStore, create_redis_client, create_sync_redis_client

RESULTS = Path(__file__).resolve().parent / "results" / "redis_cluster.json"
BATCH_SIZES = (1, 100, 500)


class ServersCpuMeter(CpuMeter):
    """Server CPU summed over several redis-servers (the single node and every cluster node)."""

    def __init__(self, servers: list[redis.Redis]) -> None:
        super().__init__(servers[0])
        self._servers = servers

    def _server(self) -> float:
        total = 0.0
        for server in self._servers:
            cpu: Any = server.info("cpu")
            total += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
        return total


async def measure_reads(
    single: RedisSettings,
    cluster: RedisSettings,
    version: str,
    inputs: dict[int, list[np.ndarray]],
    meter: CpuMeter,
) -> dict[str, Any]:
    one = create_redis_client(single)
    many = create_redis_client(cluster)
    fast_one = RedisFeatureStore(one, PREFIX, pipelined=True)
    fast_many = RedisFeatureStore(many, PREFIX, pipelined=True)
    plain_many = RedisFeatureStore(many, PREFIX)
    configs = {
        "single_mget": lambda b: fast_one.fetch(b, version=version),
        "cluster_per_node_pipelines": lambda b: fast_many.fetch(b, version=version),
        "cluster_redis_py_mget_nonatomic": lambda b: plain_many.fetch(b, version=version),
    }
    reads: dict[str, Any] = {}
    for n in BATCH_SIZES:
        rows = await interleaved(configs, inputs[n], meter)  # type: ignore[arg-type]
        base = rows["single_mget"]
        for row in rows.values():
            row["p50_ratio_vs_single"] = row["p50_ms"] / base["p50_ms"]
            row["p99_ratio_vs_single"] = row["p99_ms"] / base["p99_ms"]
        reads[str(n)] = rows
    for store in (fast_one, fast_many):
        await store.aclose()
    await one.aclose()
    await many.aclose()
    return reads


def run(n_clients: int, n_features: int, iterations: int) -> dict[str, Any]:
    schema = make_schema(n_features)
    ids, matrix = make_table(n_clients, n_features, 0.6)
    results: dict[str, Any] = {
        "clients": n_clients,
        "features": n_features,
        "cluster_nodes": 3,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": os.getloadavg()[0],
        },
    }
    with RedisServer() as server, LocalRedisCluster(nodes=3) as nodes:
        single = RedisSettings(url=server.url, key_prefix=PREFIX)
        cluster = RedisSettings(url=nodes.url, key_prefix=PREFIX)
        node_clients = [redis.Redis(nodes.host, p) for p in nodes.ports]
        meter = ServersCpuMeter([redis.Redis.from_url(server.url), *node_clients])
        load: dict[str, Any] = {}
        for name, settings in (("single", single), ("cluster", cluster)):
            sync = create_sync_redis_client(settings)
            t0 = time.perf_counter()
            write_vectors(sync, PREFIX, schema, ids, matrix)
            load[name] = {"clients_per_s": n_clients / (time.perf_counter() - t0)}
            sync.close()
        load["cluster"]["ratio_vs_single"] = (
            load["cluster"]["clients_per_s"] / load["single"]["clients_per_s"]
        )
        load["cluster"]["keys_per_node"] = [int(c.dbsize()) for c in node_clients]
        results["load"] = load
        inputs = {n: batches(ids, n, iterations + 50, seed=n) for n in BATCH_SIZES}
        results["read_latency"] = asyncio.run(measure_reads(single, cluster, schema.version, inputs, meter))
    results["machine"]["loadavg_1m_at_end"] = os.getloadavg()[0]
    return results


def report(results: dict[str, Any]) -> None:
    m = results["machine"]
    n_nodes, start, end = results["cluster_nodes"], m["loadavg_1m_at_start"], m["loadavg_1m_at_end"]
    print(
        f"\nFeature cache, one Redis vs a {n_nodes}-node cluster: {results['clients']:,} clients × "
        f"{results['features']} features; load average {start:.1f} → {end:.1f}"
    )
    load = results["load"]
    print(
        f"load: single {load['single']['clients_per_s']:,.0f} clients/s, cluster "
        f"{load['cluster']['clients_per_s']:,.0f} ({load['cluster']['ratio_vs_single']:.2f}×), keys per node "
        f"{load['cluster']['keys_per_node']}"
    )
    for n, rows in results["read_latency"].items():
        print(
            f"\nBatch of {n:<4} ids                       p50 ms   p99 ms  p50×   p99×  client µs  server µs"
        )
        for name, s in rows.items():
            print(
                f"  {name:<34} {s['p50_ms']:7.3f}  {s['p99_ms']:7.3f}  {s['p50_ratio_vs_single']:4.2f}  "
                f"{s['p99_ratio_vs_single']:5.2f}  {s['client_cpu_us']:9.0f}  {s['server_cpu_us']:9.0f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=250)
    parser.add_argument("--iterations", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="Small run to check the benchmark itself.")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.iterations = 5_000, 200
    results = run(args.clients, args.features, args.iterations)
    report(results)
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
