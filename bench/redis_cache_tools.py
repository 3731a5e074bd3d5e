"""Instruments of ``bench/bench_redis_cache.py`` and the alternatives it measures side by side.

Instruments: client and server CPU between two points (:class:`CpuMeter`), latency percentiles, random
id batches with unknown clients, configs timed in turns (:func:`interleaved`), the median of repeated
loads (:func:`median_load`). Alternatives to the product's read path, none used by the product: a
compact encoding (NaN bitmap + the other values), a minimal asyncio protocol + hiredis
(:class:`MgetProtocol`) and the raw-socket floor (server + loopback, no client library).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis
import numpy as np
import redis

CANONICAL_NAN = 0x7FC00000
_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command


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


# --- instruments ----------------------------------------------------------------------------------------
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
