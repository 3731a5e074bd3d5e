"""Bulk loader of the client-feature cache: read a feature build and load it as a version.

A version lives in its own keyspace (``{p}:fv:{version}:*``), so loading never disturbs readers of the
live one. Order of a load: schema JSON, meta ``complete=0`` (kept at 1 when re-loading a complete
version), every vector with MSETs streamed on one connection (plus a Lua EXPIRE with a TTL), then
the meta with ``complete=1`` last. Every write is an idempotent SET: an interrupted load is re-run
safely. Switching a loaded version live, dropping one and the status are in
:mod:`feature_cache.versions` (re-exported here for the callers that import them from the loader).
Synchronous on purpose: run from the CLI, never in a worker.

Re-loading a version upserts: clients absent from the new build keep their previous vector (same
schema, so still valid); drop the version first for a clean slate.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiredis
import numpy as np
import polars as pl
import redis

from feature_cache.cluster import is_cluster_client, stream_vectors_cluster, vector_chunks
from feature_cache.exceptions import FeatureCacheError
from feature_cache.keys import VECTOR_ENCODING, meta_key, schema_key, vector_key_prefix
from feature_cache.store import SyncClient, describe_client
from feature_cache.versions import CacheStatus as CacheStatus
from feature_cache.versions import VersionStatus as VersionStatus
from feature_cache.versions import cache_status as cache_status
from feature_cache.versions import drop_version as drop_version
from feature_cache.versions import redis_call
from feature_cache.versions import switch_version as switch_version
from feature_loader.exceptions import MissingColumnError, MissingFileError, RawDataError
from feature_loader.feature_schema import FeatureSchema

_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command  # C encoder of one RESP command

FEATURES_FILE = "features.parquet"
SCHEMA_FILE = "feature_schema.json"
BUILD_INFO_FILE = "build_info.json"
ID_COLUMN = "SK_ID_CURR"
CHUNK_CLIENTS = 10_000  # clients per pipeline round trip (~10 MB with 250 features)
MSET_PAIRS = 1_000  # key/value pairs per MSET command inside a pipeline

_EXPIRE_LUA = """
local ttl = ARGV[1]
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ttl) end
return #KEYS
"""


@dataclass(frozen=True)
class LoadSummary:
    version: str
    clients: int
    bytes: int
    seconds: float

    @property
    def clients_per_s(self) -> float:
        return self.clients / self.seconds if self.seconds > 0 else float("inf")


# --- input ------------------------------------------------------------------------------------------
def read_feature_table(features_path: Path, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (n,), matrix float32 C-contiguous (n, n_features)) of a feature build's parquet."""
    if not features_path.is_file():
        raise MissingFileError(
            f"{features_path}: feature table not found (run `credit-scorer features build`)"
        )
    try:
        frame = pl.scan_parquet(features_path)
        columns = frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise RawDataError(f"{features_path}: unreadable parquet file: {exc}") from exc
    missing = [name for name in (ID_COLUMN, *schema.names) if name not in columns]
    if missing:
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise MissingColumnError(f"{features_path}: missing column(s) {', '.join(missing[:5])}{more}")
    for name in (ID_COLUMN, *schema.names):
        if not columns[name].is_numeric():
            raise RawDataError(f"{features_path}: column {name} is {columns[name]}, expected a number")
    try:
        table = frame.select(ID_COLUMN, *schema.names).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise RawDataError(f"{features_path}: unreadable parquet file: {exc}") from exc
    ids = table.get_column(ID_COLUMN)
    if ids.null_count():
        row = int(ids.is_null().arg_true()[0])
        raise RawDataError(f"{features_path}: row {row}: {ID_COLUMN} is null")
    repeated = ~ids.is_first_distinct()
    if repeated.any():
        row = int(repeated.arg_true()[0])
        first = int((ids == ids[row]).arg_true()[0])
        raise RawDataError(
            f"{features_path}: row {row}: duplicate {ID_COLUMN} {ids[row]} (first at row {first})"
        )
    id_array = ids.cast(pl.Int64).to_numpy()
    # row-major: each client's vector is written whole, as one value
    matrix = table.select(pl.col(schema.names).cast(pl.Float32)).to_numpy(order="c")
    return id_array, np.ascontiguousarray(matrix, dtype="<f4")


def source_fingerprint(features_path: Path) -> str:
    """Cheap identity of the loaded build: build_info.json beside it, else the parquet's size+mtime."""
    info = features_path.with_name(BUILD_INFO_FILE)
    if info.is_file():
        payload = info.read_bytes()
    else:
        stat = features_path.stat()
        payload = f"{features_path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    return hashlib.sha256(payload).hexdigest()[:16]


# --- load ---------------------------------------------------------------------------------------------
def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _pack_chunk(
    keys: list[bytes], values: list[memoryview], ttl_s: int | None, expire_sha: str
) -> list[bytes]:
    """RESP of one chunk: MSETs of MSET_PAIRS pairs, each followed (with a TTL) by an EVALSHA that sets
    the TTL of its keys (MSET cannot; this is cheaper for the server than SET EX from Lua)."""
    packed = []
    for s, e in _chunks(len(keys), MSET_PAIRS):
        args: list[bytes | memoryview] = [
            x for pair in zip(keys[s:e], values[s:e], strict=True) for x in pair
        ]
        packed.append(_pack(("MSET", *args)))
        if ttl_s is not None:
            packed.append(_pack(("EVALSHA", expire_sha, e - s, *keys[s:e], str(ttl_s).encode())))
    return packed


def _drain(conn: Any, replies: int, clients: int, on_progress: Callable[[int], None] | None) -> None:
    for _ in range(replies):
        conn.read_response()  # raises the server's error reply, if any
    if clients and on_progress is not None:
        on_progress(clients)


def write_vectors(
    client: SyncClient,
    prefix: str,
    schema: FeatureSchema,
    ids: np.ndarray,
    matrix: np.ndarray,
    *,
    source: str = "",
    ttl_s: int | None = None,
    chunk_clients: int = CHUNK_CLIENTS,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load one version from arrays (``matrix`` rows in schema order); ``complete=1`` is written last."""
    version = schema.version
    n_features = len(schema)
    if matrix.ndim != 2 or matrix.shape != (len(ids), n_features):
        raise FeatureCacheError(
            f"feature matrix of shape {matrix.shape} does not match {len(ids)} ids × {n_features} features"
        )
    where = describe_client(client)
    matrix = np.ascontiguousarray(matrix, dtype="<f4")
    head = vector_key_prefix(prefix, version)
    mkey, skey = meta_key(prefix, version), schema_key(prefix, version)
    started = time.perf_counter()
    cluster = is_cluster_client(client)
    expire_sha = redis_call(where, lambda: _begin_version(client, schema, mkey, skey, script=not cluster))
    id_list = ids.astype(np.int64, copy=False).tolist()
    if isinstance(client, redis.Redis):
        redis_call(
            where,
            lambda: _stream_vectors(
                client, head, id_list, matrix, ttl_s, expire_sha, chunk_clients, on_progress
            ),
        )
    else:
        chunks = vector_chunks(head, id_list, matrix, chunk_clients)
        redis_call(where, lambda: stream_vectors_cluster(client, chunks, ttl_s, on_progress))
    total_bytes = len(id_list) * n_features * 4
    meta: dict[Any, Any] = {
        "clients": len(id_list),
        "bytes": total_bytes,
        "n_features": n_features,
        "encoding": VECTOR_ENCODING,
        "loaded_at": repr(time.time()),
        "source": source,
        "ttl_s": ttl_s or 0,
        "complete": 1,
    }
    redis_call(where, lambda: _finish_version(client, mkey, skey, meta, ttl_s))
    return LoadSummary(version, len(id_list), total_bytes, time.perf_counter() - started)


def _begin_version(client: SyncClient, schema: FeatureSchema, mkey: str, skey: str, *, script: bool) -> str:
    """Schema and meta before any vector; returns the SHA of the EXPIRE script (``script``: a single
    node's loader uses it; a cluster's sets the TTL with SET EX)."""
    pipe = client.pipeline(transaction=False)
    pipe.set(skey, schema.to_json_bytes())
    pipe.hsetnx(mkey, "complete", "0")  # a complete version stays readable while re-loaded
    pipe.hset(mkey, mapping={"n_features": len(schema), "encoding": VECTOR_ENCODING})
    if script:
        pipe.script_load(_EXPIRE_LUA)
    replies = pipe.execute()
    return str(replies[-1]) if script else ""


def _stream_vectors(
    client: redis.Redis,
    head: bytes,
    id_list: list[int],
    matrix: np.ndarray,
    ttl_s: int | None,
    expire_sha: str,
    chunk_clients: int,
    on_progress: Callable[[int], None] | None,
) -> None:
    # Two-deep streaming on one connection: send chunk k, then read the replies of chunk k-1, so the
    # server stores one chunk while this process encodes the next.
    row_bytes = matrix.shape[1] * 4
    conn = client.connection_pool.get_connection()
    try:
        in_flight: tuple[int, int] = (0, 0)  # (replies, clients) of the previous chunk
        for start, end in _chunks(len(id_list), chunk_clients):
            block = memoryview(matrix[start:end].tobytes())
            keys = [b"%b%d" % (head, i) for i in id_list[start:end]]
            values = [block[o : o + row_bytes] for o in range(0, len(block), row_bytes)]
            packed = _pack_chunk(keys, values, ttl_s, expire_sha)
            conn.send_packed_command(packed, check_health=False)
            _drain(conn, *in_flight, on_progress)
            in_flight = (len(packed), end - start)
        _drain(conn, *in_flight, on_progress)
    except BaseException:
        conn.disconnect()  # replies may be pending: never hand this connection back as is
        raise
    finally:
        client.connection_pool.release(conn)


def _finish_version(
    client: SyncClient, mkey: str, skey: str, meta: dict[Any, Any], ttl_s: int | None
) -> None:
    """The full meta with ``complete=1``, last; the TTL (or none) on meta and schema."""
    pipe = client.pipeline(transaction=False)
    pipe.hset(mkey, mapping=meta)
    if ttl_s is not None:
        pipe.expire(mkey, ttl_s)
        pipe.expire(skey, ttl_s)
    else:
        pipe.persist(mkey)  # a reload without TTL must not leave an expiring meta
    pipe.execute()


def load_features(
    client: SyncClient,
    features_dir: Path,
    prefix: str,
    *,
    ttl_s: int | None = None,
    chunk_clients: int = CHUNK_CLIENTS,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load ``features_dir/features.parquet`` under the version of ``features_dir/feature_schema.json``."""
    schema_path = features_dir / SCHEMA_FILE
    if not schema_path.is_file():
        raise MissingFileError(
            f"{schema_path}: feature schema not found (run `credit-scorer features build`)"
        )
    try:
        schema = FeatureSchema.load(schema_path)
    except ValueError as exc:
        raise RawDataError(f"{schema_path}: invalid feature schema: {exc}") from exc
    features_path = features_dir / FEATURES_FILE
    ids, matrix = read_feature_table(features_path, schema)
    if on_start is not None:
        on_start(len(ids))
    return write_vectors(
        client,
        prefix,
        schema,
        ids,
        matrix,
        source=source_fingerprint(features_path),
        ttl_s=ttl_s,
        chunk_clients=chunk_clients,
        on_progress=on_progress,
    )
