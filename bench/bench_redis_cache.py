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
Writes bench/results/redis_cache.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import hiredis
import numpy as np
import polars as pl
import redis
import redis.asyncio

from credit_scorer.settings import RedisSettings
from devtools.launchers import RedisServer
from feature_cache.keys import vector_key_prefix, vector_keys
from feature_cache.loader import load_features, switch_version, write_vectors
from feature_cache.store import (
    RedisFeatureStore,
    create_redis_client,
    create_sync_redis_client,
    decode_vectors,
)
from feature_loader.feature_schema import FeatureField, FeatureKind, FeatureSchema, FeatureSource

RESULTS = Path(__file__).resolve().parent / "results" / "redis_cache.json"
CANONICAL_NAN = 0x7FC00000
_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command
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


# --- compact encoding (alternative measured side by side) -----------------------------------------------
def compact_encode(matrix: np.ndarray) -> list[bytes]:
    """Per row: bitmap of canonical-NaN positions, then the other values (bit-exact, payload NaNs kept)."""
    nan = matrix.view(np.uint32) == CANONICAL_NAN
    heads = np.packbits(nan, axis=1)
    return [heads[i].tobytes() + matrix[i][~nan[i]].tobytes() for i in range(len(matrix))]


def compact_decode(values: list[bytes | None], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    found = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    out = np.full((len(values), n_features), np.nan, dtype=np.float32)
    hits = [v for v in values if v is not None]
    if not hits:
        return out, found
    head = (n_features + 7) // 8
    lengths = np.fromiter(map(len, hits), dtype=np.int64, count=len(hits))
    buf = np.frombuffer(b"".join(hits), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    head_idx = starts[:, None] + np.arange(head)
    nan = np.unpackbits(buf[head_idx], axis=1, count=n_features).astype(bool)
    is_head = np.zeros(len(buf), dtype=bool)
    is_head[head_idx.ravel()] = True
    rows = np.full((len(hits), n_features), np.nan, dtype=np.float32)
    rows[~nan] = buf[~is_head].view("<f4")
    out[found] = rows
    return out, found


# --- a minimal asyncio RESP client (alternative measured side by side; not used by the product) ---------
class MgetProtocol(asyncio.Protocol):
    """Pipelined commands on one connection, replies parsed by hiredis, no client library around it."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def call(self, *args: Any) -> asyncio.Future[Any]:
        assert self.transport is not None
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(_pack(args))
        return future


# --- helpers --------------------------------------------------------------------------------------------
def pct(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1e3
    return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)), "n": len(arr)}


def batches(ids: np.ndarray, size: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        batch = rng.choice(ids, size=size)
        unknown = rng.random(size) < 0.05
        batch[unknown] = -batch[unknown]  # ids that were never loaded
        out.append(batch)
    return out


class CpuMeter:
    """Client CPU (this process) and server CPU (INFO cpu of redis-server) spent between start and stop.

    CPU time is far less sensitive than wall time to other jobs sharing the machine's cores.
    """

    def __init__(self, sync: redis.Redis) -> None:
        self._sync = sync
        self._client0 = self._server0 = 0.0

    def _server(self) -> float:
        cpu: Any = self._sync.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def start(self) -> None:
        self._server0, self._client0 = self._server(), time.process_time()

    def stop(self, per: int) -> dict[str, float]:
        client = time.process_time() - self._client0
        server = self._server() - self._server0
        return {"client_cpu_us": client / per * 1e6, "server_cpu_us": server / per * 1e6}


async def interleaved(
    configs: dict[str, Callable[[np.ndarray], Awaitable[Any]]], inputs: list[np.ndarray], meter: CpuMeter
) -> dict[str, dict[str, float]]:
    """Latency and CPU per call of each config. The configs take turns call by call, in a rotating
    order, so that other jobs on the machine and the position in the turn weigh on all of them alike.
    Server CPU is measured per config over a separate block of calls."""
    names = list(configs)
    for call in configs.values():
        for batch in inputs[:50]:  # warm-up: connections, script cache
            await call(batch)
    wall: dict[str, list[float]] = {name: [] for name in names}
    client_cpu = dict.fromkeys(names, 0.0)
    for i, batch in enumerate(inputs[50:]):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            c0, t0 = time.process_time(), time.perf_counter()
            await configs[name](batch)
            wall[name].append(time.perf_counter() - t0)
            client_cpu[name] += time.process_time() - c0
    out = {}
    for name in names:
        block = inputs[50 : 50 + min(300, len(inputs) - 50)]
        meter.start()
        for batch in block:
            await configs[name](batch)
        server = meter.stop(len(block))["server_cpu_us"]
        out[name] = {
            **pct(wall[name]),
            "client_cpu_us": client_cpu[name] / len(wall[name]) * 1e6,
            "server_cpu_us": server,
        }
    return out


def raw_socket_floor(port: int, keys_per_batch: list[list[bytes]]) -> dict[str, float]:
    """MGET over a bare socket + hiredis reader: what the server and loopback cost, no client library."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    try:
        for i, keys in enumerate(keys_per_batch):
            t0 = time.perf_counter()
            sock.sendall(_pack(("MGET", *keys)))
            reader = hiredis.Reader()
            reply: Any = False
            while reply is False:
                reader.feed(sock.recv(1 << 20))
                reply = reader.gets()
            if i >= 50:
                samples.append(time.perf_counter() - t0)
    finally:
        sock.close()
    return pct(samples)


def median_load(
    repeats: int, run: Callable[[], float], reset: Callable[[], Any], meter: CpuMeter, clients: int
) -> dict[str, Any]:
    """Median wall rate of ``repeats`` loads, with client/server CPU per client of the median run."""
    runs = []
    for _ in range(repeats):
        reset()
        meter.start()
        rate = run()
        runs.append((rate, meter.stop(clients)))
    runs.sort(key=lambda r: r[0])
    rate, cpu = runs[len(runs) // 2]
    # What the load would reach with client and server each on its own idle core (they overlap).
    capacity = 1e6 / max(cpu["client_cpu_us"], cpu["server_cpu_us"])
    return {"median": rate, "runs": [r for r, _ in runs], **cpu, "cpu_bound_clients_per_s": capacity}


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
        sync.config_set("save", "")

        # --- load -----------------------------------------------------------------------------------
        def timed_write(**kw: Any) -> float:
            summary = write_vectors(sync, PREFIX, schema, ids, matrix, **kw)
            return summary.clients_per_s

        meter = CpuMeter(sync)
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

            load["load_features_from_parquet"] = median_load(
                repeats, end_to_end, sync.flushall, meter, n_clients
            )
        base = load["mset_pipeline"]["median"]
        for row in load.values():
            row["ratio_vs_mset"] = row["median"] / base
        results["load_clients_per_s"] = load
        switch_version(sync, PREFIX, version)
        results["redis_used_memory_mb"] = sync.info("memory")["used_memory"] / 1e6

        # compact keyspace for the encoding comparison (same clients, bit-exact alternative)
        compact_head = b"bench-compact:fv:" + version.encode() + b":"
        encoded = compact_encode(matrix)
        check, _ = compact_decode(list[bytes | None](encoded[:1_000]), n_features)
        assert np.array_equal(check.view(np.uint32), matrix[:1_000].view(np.uint32)), (
            "compact codec not exact"
        )
        results["compact_mean_value_bytes"] = float(np.mean([len(v) for v in encoded[:10_000]]))
        pipe = sync.pipeline(transaction=False)
        for start in range(0, n_clients, 1_000):
            args: list[Any] = []
            for i in range(start, min(start + 1_000, n_clients)):
                args += [b"%b%d" % (compact_head, ids[i]), encoded[i]]
            pipe.execute_command("MSET", *args)
            if len(pipe) >= 10:
                pipe.execute()
        pipe.execute()
        del encoded

        # --- reads ----------------------------------------------------------------------------------
        inputs = {n: batches(ids, n, iterations + 50, seed=n) for n in BATCH_SIZES}
        reads: dict[str, dict[str, Any]] = {}

        async def read_suite() -> None:
            from redis._parsers import _AsyncRESP2Parser

            client = create_redis_client(settings)
            store = RedisFeatureStore(client, PREFIX)
            pipelined_store = RedisFeatureStore(client, PREFIX, pipelined=True)  # the product's hot path
            pure_pool = redis.asyncio.ConnectionPool.from_url(server.url, parser_class=_AsyncRESP2Parser)
            pure = redis.asyncio.Redis.from_pool(pure_pool)
            pure_store = RedisFeatureStore(pure, PREFIX)
            plain = redis.asyncio.Redis.from_url(server.url, max_connections=settings.max_connections)
            plain_store = RedisFeatureStore(plain, PREFIX)

            async def compact_fetch(batch: np.ndarray) -> Any:
                keys = [b"%b%d" % (compact_head, i) for i in batch.tolist()]
                values: Any = await client.mget(keys)
                return compact_decode(values, n_features)

            async def mget_only(batch: np.ndarray) -> Any:
                return await client.mget(vector_keys(PREFIX, version, batch))

            loop = asyncio.get_running_loop()
            _, proto = await loop.create_connection(MgetProtocol, "127.0.0.1", server.port or 0)

            async def protocol_fetch(batch: np.ndarray) -> Any:
                return decode_vectors(
                    await proto.call("MGET", *vector_keys(PREFIX, version, batch)), n_features
                )

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
            for n in BATCH_SIZES:
                reads[str(n)] = await interleaved(configs, inputs[n], meter)
            await pipelined_store.aclose()
            await client.aclose()
            await pure.aclose()
            await plain.aclose()
            assert proto.transport is not None
            proto.transport.close()

        asyncio.run(read_suite())

        head = vector_key_prefix(PREFIX, version)
        for n in BATCH_SIZES:
            keys = [[b"%b%d" % (head, i) for i in b.tolist()] for b in inputs[n]]
            meter.start()
            floor = raw_socket_floor(server.port or 0, keys)
            reads[str(n)]["raw_socket_floor"] = {**floor, **meter.stop(len(keys))}  # incl. 50 warm-up
            base_p50 = reads[str(n)]["fetch_version"]["p50_ms"]
            for stats in reads[str(n)].values():
                stats["p50_ratio_vs_fetch_version"] = stats["p50_ms"] / base_p50
        results["read_latency"] = reads
        results["machine"]["loadavg_1m_at_end"] = os.getloadavg()[0]
        sync.close()
    return results


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
