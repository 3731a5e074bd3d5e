"""Redis Cluster adapters of the feature cache: clients, the hot path's reads, the loader's writes.

A cluster refuses a multi-key command whose keys hash to different slots (CROSSSLOT), and a batch's
vector keys spread over the slots on purpose (:mod:`feature_cache.keys`). So a batch is read as one
pipeline of ``GET``s per node, the nodes' pipelines in parallel: one round trip per batch (the slowest
node's), like the single node's one ``MGET``. redis-py's ``mget_nonatomic`` would send one ``MGET`` per
*slot* through its generic cluster pipeline (it too runs the nodes in parallel, but spends most of a
100-key batch in Python: ``bench/results/redis_cluster.json``).

The slot → node table is redis-py's (``CLUSTER SLOTS``), copied once and thrown away after any failure
(a node down, a ``MOVED`` after a resharding or fail-over), so the next try re-reads it. Failures are
raised as ``ConnectionError`` for the store to translate into the cache's transient error: the worker
retries them like a single Redis being away (:mod:`credit_scorer.retry`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import hiredis
import numpy as np
import redis
import redis.asyncio.cluster
import redis.cluster

from credit_scorer.settings import RedisSettings
from feature_cache.exceptions import FeatureCacheError
from feature_cache.keys import N_SLOTS, key_slot
from feature_cache.mget import PipelinedMget

_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command


# --- clients --------------------------------------------------------------------------------------------
def parse_cluster_url(settings: RedisSettings) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """(startup nodes, connection kwargs) of ``redis[s][+cluster]://[user:pass@]h1:p1[,h2:p2…][/0]``."""
    scheme, sep, rest = settings.url.partition("://")
    if not sep or scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        raise FeatureCacheError(f"invalid Redis Cluster URL scheme {scheme!r}: expected redis+cluster://")
    netloc, _, path = rest.partition("/")
    creds, _, hosts = netloc.rpartition("@")
    kwargs: dict[str, Any] = {"ssl": settings.tls or scheme.startswith("rediss")}
    if creds:
        user, _, password = creds.partition(":")
        kwargs.update(username=unquote(user) or None, password=unquote(password) or None)
    if settings.password is not None:
        kwargs["password"] = settings.password.get_secret_value()
    db = settings.db if settings.db is not None else (path.split("?")[0] or "0")
    if str(db) != "0":
        raise FeatureCacheError(f"Redis Cluster has only db 0, not {db}")
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise FeatureCacheError(f"invalid Redis Cluster node {item!r}: expected host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes, kwargs


def _common(settings: RedisSettings) -> dict[str, Any]:
    return {
        "max_connections": settings.max_connections,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
    }


def create_async_cluster_client(settings: RedisSettings) -> redis.asyncio.cluster.RedisCluster:
    nodes, kwargs = parse_cluster_url(settings)
    startup = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in nodes]
    return redis.asyncio.cluster.RedisCluster(startup_nodes=startup, **kwargs, **_common(settings))


def create_sync_cluster_client(settings: RedisSettings) -> redis.cluster.RedisCluster:
    nodes, kwargs = parse_cluster_url(settings)
    startup = [redis.cluster.ClusterNode(h, p) for h, p in nodes]
    try:
        return redis.cluster.RedisCluster(startup_nodes=startup, **kwargs, **_common(settings))
    except (redis.exceptions.RedisError, OSError) as exc:  # the sync client connects at once
        raise FeatureCacheError(f"Redis Cluster at {settings.url} is unavailable: {exc}") from exc


def describe_cluster(client: redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster) -> str:
    nodes = ",".join(sorted(client.nodes_manager.startup_nodes))
    return f"redis+cluster://{nodes}"


def slot_owners(slots_cache: dict[int, list[Any]]) -> list[str]:
    """Name (``host:port``) of the primary of each slot; "" where no node serves it."""
    owners = [""] * N_SLOTS
    for slot, nodes in slots_cache.items():
        owners[slot] = nodes[0].name
    return owners


def group_by_owner(keys: list[bytes], owners: list[str]) -> dict[str, list[int]]:
    """Indices of ``keys`` per owning node (raises ConnectionError for a slot no node serves)."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(owners[key_slot(key)], []).append(i)
    if "" in groups:
        raise ConnectionError("Redis Cluster: some hash slots are served by no node (cluster down?)")
    return groups


# --- hot path: one pipeline per node, the nodes in parallel ------------------------------------------
class ClusterMget:
    """``mget(keys)`` over a cluster: per node, one pipelined write of ``GET``s (lean connection)."""

    def __init__(self, client: redis.asyncio.cluster.RedisCluster) -> None:
        self._client = client
        self._owners: list[str] | None = None
        self._conns: dict[str, PipelinedMget] = {}
        self._auth = client.get_connection_kwargs()

    async def _table(self) -> list[str]:
        if self._owners is None:
            if self._client._initialize:  # first use: redis-py's own start-up (CLUSTER SLOTS)
                await self._client.initialize()
            else:  # after a failure: re-read who serves which slot
                await self._client.nodes_manager.initialize()
            self._owners = slot_owners(self._client.nodes_manager.slots_cache)
        return self._owners

    def _conn(self, name: str) -> PipelinedMget:
        conn = self._conns.get(name)
        if conn is None:
            host, _, port = name.rpartition(":")
            conn = PipelinedMget(
                host,
                int(port),
                username=self._auth.get("username"),
                password=self._auth.get("password"),
                timeout_s=float(self._auth.get("socket_timeout") or 2.0),
            )
            self._conns[name] = conn
        return conn

    async def mget(self, keys: list[bytes]) -> list[bytes | None]:
        try:
            groups = group_by_owner(keys, await self._table())
            replies = await asyncio.gather(
                *(self._conn(name).pipeline([("GET", keys[i]) for i in idx]) for name, idx in groups.items())
            )
        except BaseException:
            self._owners = None  # a node down, a MOVED: re-read the slot table before the next try
            raise
        out: list[bytes | None] = [None] * len(keys)
        for idx, values in zip(groups.values(), replies, strict=True):
            for i, value in zip(idx, values, strict=True):
                out[i] = value
        return out

    async def aclose(self) -> None:
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            await conn.aclose()


# --- loader: per node, SETs streamed on one connection, the nodes in parallel ------------------------
def _owner_table(client: redis.cluster.RedisCluster) -> list[str]:
    return slot_owners(client.nodes_manager.slots_cache)


def stream_vectors_cluster(
    client: redis.cluster.RedisCluster,
    chunks: Iterator[tuple[list[bytes], list[memoryview]]],
    ttl_s: int | None,
    on_progress: Callable[[int], None] | None,
) -> None:
    """Write each chunk's (keys, values) as ``SET k v [EX ttl]``: sent to every node, then every node's
    replies read, so the nodes store a chunk in parallel. (MSET and the EXPIRE script of the single
    node would be CROSSSLOT here.)"""
    owners = _owner_table(client)
    expiry = (b"EX", b"%d" % ttl_s) if ttl_s is not None else ()
    conns: dict[str, Any] = {}
    try:
        for keys, values in chunks:
            groups = group_by_owner(keys, owners)
            for name, idx in groups.items():
                if name not in conns:
                    node = client.get_node(node_name=name)
                    conns[name] = client.get_redis_connection(node).connection_pool.get_connection()
                packed = [_pack(("SET", keys[i], values[i], *expiry)) for i in idx]
                conns[name].send_packed_command(packed, check_health=False)
            for name, idx in groups.items():
                for _ in idx:
                    conns[name].read_response()  # raises the server's error reply, if any
            if on_progress is not None:
                on_progress(len(keys))
    except BaseException:
        for conn in conns.values():
            conn.disconnect()  # replies may be pending: never hand these connections back as they are
        raise
    finally:
        for name, conn in conns.items():
            client.get_redis_connection(client.get_node(node_name=name)).connection_pool.release(conn)


def is_cluster_client(client: object) -> bool:
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def vector_chunks(
    head: bytes, id_list: list[int], matrix: np.ndarray, chunk_clients: int
) -> Iterator[tuple[list[bytes], list[memoryview]]]:
    """(keys, values) of each chunk of ``chunk_clients`` rows (values are views of one copy)."""
    row_bytes = matrix.shape[1] * 4
    for start in range(0, len(id_list), chunk_clients):
        end = min(start + chunk_clients, len(id_list))
        block = memoryview(matrix[start:end].tobytes())
        keys = [b"%b%d" % (head, i) for i in id_list[start:end]]
        yield keys, [block[o : o + row_bytes] for o in range(0, len(block), row_bytes)]
