"""Read API of the client-feature cache: one round trip per batch of client ids.

Used by the stream worker, the REST API and the replay tool. Create the client in ``start()`` /
lifespan with :func:`create_redis_client`, then::

    store = RedisFeatureStore(client, settings.redis.key_prefix)
    await store.check_compatible(model_card.feature_schema_version)   # at start
    features = await store.fetch(sk_ids, version=model_card.feature_schema_version)  # per micro-batch

``fetch`` returns the scoring core's own :class:`scoring.features.CachedFeatures`; the worker, the API
and replay read through :class:`feature_cache.source.RedisFeatureSource` (the model's version,
one retry policy). Pass the model's version to :meth:`RedisFeatureStore.fetch`: the vectors then always
match the model, even while an operator switches the cache to a newer version. Each vector key holds the
raw float32 little-endian bytes of the full vector; a batch is decoded with one ``np.frombuffer`` over
the joined values. See docs/ARCHITECTURE.md (Redis layout).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import ExponentialBackoff

from credit_scorer.settings import RedisSettings
from feature_cache.cluster import (
    ClusterMget,
    create_async_cluster_client,
    create_sync_cluster_client,
    describe_cluster,
)
from feature_cache.exceptions import (
    CacheUnavailableError,
    FeatureCacheError,
    FeatureVersionMismatchError,
    NoCurrentVersionError,
)
from feature_cache.keys import (
    VECTOR_ENCODING,
    control_head,
    current_key,
    encode_ids,
    meta_key,
    schema_key,
    vector_keys,
)
from feature_cache.mget import PipelinedMget
from feature_loader.feature_schema import FeatureSchema
from scoring.features import CachedFeatures

T = TypeVar("T")
# A single Redis (standalone, or a primary) or a Redis Cluster: ``settings.redis`` chooses.
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
SyncClient = redis.Redis | redis.cluster.RedisCluster

# Version facts (n_features, loaded_at) are re-read at most this often, and at once when a batch finds
# nobody (a dropped version must fail loudly, never score every client as unknown).
META_REFRESH_S = 5.0
_META_FIELDS = ("complete", "n_features", "loaded_at", "encoding")

# fetch() without a version: resolve the live version and read the vectors atomically, in one round trip.
# (It builds keys server-side, which a standalone or primary/replica Redis allows; not Redis Cluster.)
_FETCH_CURRENT_LUA = """
local v = redis.call('GET', KEYS[1])
if not v then return {false} end
local meta = redis.call('HMGET', ARGV[1] .. ':meta:' .. v, 'complete', 'n_features', 'loaded_at', 'encoding')
local head = ARGV[2] .. ':fv:' .. v .. ':'
local out = {}
local n = #ARGV - 2
local i = 0
while i < n do
  local keys = {}
  local last = math.min(i + 4000, n)
  for j = i + 1, last do keys[#keys + 1] = head .. ARGV[j + 2] end
  local vals = redis.call('MGET', unpack(keys))
  for k = 1, #vals do out[#out + 1] = vals[k] end
  i = last
end
return {v, meta, out}
"""


# --- clients --------------------------------------------------------------------------------------------
def _url_of(settings: RedisSettings) -> str:
    url = settings.url
    if settings.tls and url.startswith("redis://"):
        url = "rediss://" + url[len("redis://") :]
    return url


def _client_kwargs(settings: RedisSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "timeout": settings.socket_timeout_s,  # BlockingConnectionPool: wait for a free connection
    }
    return kwargs


def _overrides(settings: RedisSettings) -> dict[str, Any]:
    """Password and db of the settings win over those of the URL (from_url gives the URL precedence)."""
    overrides: dict[str, Any] = {}
    if settings.password is not None:
        overrides["password"] = settings.password.get_secret_value()
    if settings.db is not None:
        overrides["db"] = settings.db
    return overrides


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}"


def create_redis_client(settings: RedisSettings) -> AsyncClient:
    """Asyncio client (hiredis parser when installed) over a blocking pool of ``max_connections``; a
    cluster client when ``settings.is_cluster`` (connects on first use, like the single-node one)."""
    from redis.asyncio.retry import Retry

    if settings.is_cluster:
        return create_async_cluster_client(settings)

    try:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            _url_of(settings),
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
            **_client_kwargs(settings),
        )
    except ValueError as exc:
        raise FeatureCacheError(f"invalid Redis URL {mask_url(settings.url)}: {exc}") from exc
    pool.connection_kwargs.update(_overrides(settings))
    return redis.asyncio.Redis.from_pool(pool)


def create_sync_redis_client(settings: RedisSettings) -> SyncClient:
    """Blocking client with the same settings (loader, CLI, tests)."""
    from redis.retry import Retry

    if settings.is_cluster:
        return create_sync_cluster_client(settings)

    try:
        pool = redis.BlockingConnectionPool.from_url(
            _url_of(settings),
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
            **_client_kwargs(settings),
        )
    except ValueError as exc:
        raise FeatureCacheError(f"invalid Redis URL {mask_url(settings.url)}: {exc}") from exc
    pool.connection_kwargs.update(_overrides(settings))
    return redis.Redis.from_pool(pool)


def describe_client(client: SyncClient | AsyncClient) -> str:
    """Where ``client`` connects, as a URL without password (for error messages)."""
    if isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster):
        return describe_cluster(client)
    kw = client.connection_pool.connection_kwargs
    db = kw.get("db", 0)
    if kw.get("path"):
        return f"unix://{kw['path']}?db={db}"
    conn_cls = getattr(client.connection_pool, "connection_class", None)
    scheme = "rediss" if conn_cls is not None and "SSL" in conn_cls.__name__ else "redis"
    return f"{scheme}://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"


def translate_redis_error(exc: BaseException, where: str) -> FeatureCacheError:
    """Map a redis-py / socket error to the feature_loader error the callers handle."""
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | OSError):
        return CacheUnavailableError(f"Redis at {where} is unavailable: {exc}")
    return FeatureCacheError(f"Redis at {where} failed: {exc}")


# --- reading ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _VersionInfo:
    n_features: int
    loaded_at: float | None
    read_at: float


def decode_vectors(
    values: Sequence[bytes | None], n_features: int, where: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, found) of MGET values: one ``np.frombuffer`` over the joined values (one copy)."""
    n = len(values)
    hits = [v for v in values if v is not None]
    joined = bytearray().join(hits)  # mutable, so the matrix below is writable without a second copy
    if len(joined) != len(hits) * n_features * 4:
        bad = next(len(v) for v in hits if len(v) != n_features * 4)
        raise FeatureCacheError(
            f"corrupt feature vector in Redis {where}: {bad} bytes where {n_features} float32 "
            f"({n_features * 4} bytes) were expected"
        )
    rows = np.frombuffer(joined, dtype="<f4").reshape(len(hits), n_features)
    if len(hits) == n:
        return rows, np.ones(n, dtype=bool)
    found = np.fromiter((v is not None for v in values), dtype=bool, count=n)
    matrix = np.full((n, n_features), np.nan, dtype=np.float32)
    matrix[found] = rows
    return matrix, found


class RedisFeatureStore:
    """The scorer's view of the cache (asyncio). All Redis failures surface as FeatureCacheError."""

    def __init__(self, client: AsyncClient, key_prefix: str = "cs", *, pipelined: bool = False) -> None:
        """``pipelined``: serve the hot path's MGETs over lean pipelined connections to the same server
        (:mod:`feature_cache.mget`; plain TCP clients only) or, for a cluster, to each node
        (:class:`feature_cache.cluster.ClusterMget`); the owner then calls :meth:`aclose`."""
        self._client = client
        self._cluster: redis.asyncio.cluster.RedisCluster | None = None
        self._fast: PipelinedMget | ClusterMget | None = None
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            self._cluster = client
            if pipelined and not client.get_connection_kwargs().get("ssl"):
                self._fast = ClusterMget(client)
        else:
            self._fast = PipelinedMget.from_client(client) if pipelined else None
            self._fetch_current = client.register_script(_FETCH_CURRENT_LUA)
        self._prefix = key_prefix
        self._where = describe_client(client)
        self._schemas: dict[str, FeatureSchema] = {}
        self._info: dict[str, _VersionInfo] = {}

    @property
    def where(self) -> str:
        return self._where

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (redis.exceptions.RedisError, OSError) as exc:
            raise translate_redis_error(exc, self._where) from exc

    async def aclose(self) -> None:
        """Close the pipelined connection, if any (the redis-py client stays its owner's to close)."""
        if self._fast is not None:
            await self._fast.aclose()

    # --- versions ------------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._call(self._client.ping())

    async def current_version(self) -> str:
        raw = await self._call(self._client.get(current_key(self._prefix)))
        if raw is None:
            raise NoCurrentVersionError(
                f"no feature version is live in the Redis cache at {self._where} (prefix {self._prefix!r}): "
                "run `credit-scorer cache load --switch`"
            )
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def schema(self, version: str) -> FeatureSchema:
        cached = self._schemas.get(version)
        if cached is not None:
            return cached
        raw = await self._call(self._client.get(schema_key(self._prefix, version)))
        if raw is None:
            raise FeatureVersionMismatchError(
                f"feature version {version} is not loaded in the Redis cache at {self._where} "
                f"(prefix {self._prefix!r})"
            )
        try:
            schema = FeatureSchema.from_json_bytes(raw)
        except ValueError as exc:
            raise FeatureCacheError(
                f"unreadable feature schema {version} in Redis at {self._where}: {exc}"
            ) from exc
        if schema.version != version:
            raise FeatureVersionMismatchError(
                f"Redis key {schema_key(self._prefix, version)} holds schema version {schema.version}"
            )
        self._schemas[version] = schema
        return schema

    async def check_compatible(self, expected_version: str) -> None:
        """Raise FeatureVersionMismatchError unless the live cache version is ``expected_version``."""
        current = await self.current_version()
        if current != expected_version:
            raise FeatureVersionMismatchError(
                f"the Redis cache at {self._where} serves feature version {current} but the model expects "
                f"{expected_version}: load and switch {expected_version} (credit-scorer cache load --switch) "
                f"or deploy a model trained on feature version {current}"
            )
        await self._version_info(current, force=True)

    def _parse_meta(self, version: str, meta: Sequence[bytes | None]) -> _VersionInfo:
        complete, n_features, loaded_at, encoding = meta
        if n_features is None:
            raise FeatureVersionMismatchError(
                f"feature version {version} is not loaded in the Redis cache at {self._where} "
                f"(prefix {self._prefix!r})"
            )
        if complete != b"1":
            raise FeatureVersionMismatchError(
                f"feature version {version} is only partly loaded in the Redis cache at {self._where}: "
                "re-run `credit-scorer cache load`"
            )
        if encoding is not None and encoding.decode() != VECTOR_ENCODING:
            raise FeatureCacheError(
                f"feature version {version} in Redis at {self._where} uses encoding {encoding.decode()!r}; "
                f"this reader decodes {VECTOR_ENCODING!r}"
            )
        info = _VersionInfo(
            n_features=int(n_features),
            loaded_at=float(loaded_at) if loaded_at is not None else None,
            read_at=time.monotonic(),
        )
        self._info[version] = info
        return info

    async def _version_info(self, version: str, force: bool = False) -> _VersionInfo:
        info = self._info.get(version)
        if info is not None and not force and time.monotonic() - info.read_at < META_REFRESH_S:
            return info
        meta: Any = await self._call(self._client.hmget(meta_key(self._prefix, version), list(_META_FIELDS)))
        return self._parse_meta(version, meta)

    # --- vectors ---------------------------------------------------------------------------------------
    async def fetch(self, sk_ids: Sequence[int] | np.ndarray, version: str | None = None) -> CachedFeatures:
        """Vectors of ``sk_ids`` (one MGET; the live version when ``version`` is None, atomically)."""
        if version is None:
            return await self._fetch_live(sk_ids)
        keys = vector_keys(self._prefix, version, sk_ids)
        info = self._info.get(version)
        if info is None or time.monotonic() - info.read_at >= META_REFRESH_S:
            # Unknown or stale version facts: read them in the same round trip as the vectors.
            meta, values = await self._call(self._meta_and_values(version, keys))
            info = self._parse_meta(version, meta)
        elif not keys:
            values = []
        else:
            values = await self._call(self._mget(keys))
        matrix, found = decode_vectors(values, info.n_features, self._where)
        if keys and not found.any():
            info = await self._version_info(version, force=True)  # dropped meanwhile? raise, loudly
        return CachedFeatures(matrix, found, version, info.loaded_at)

    def _mget(self, keys: list[bytes]) -> Awaitable[list[Any]]:
        if self._fast is not None:
            return self._fast.mget(keys)
        if self._cluster is not None:
            return self._cluster.mget_nonatomic(keys)
        return self._client.mget(keys)  # type: ignore[return-value]

    async def _meta_and_values(self, version: str, keys: list[bytes]) -> tuple[Any, list[Any]]:
        """The version's meta and the vectors, in one round trip (concurrent ones on a cluster: the meta
        lives on the control slot's node, the vectors on every node)."""
        fields = list(_META_FIELDS)
        if self._cluster is not None:
            hmget = self._cluster.hmget(meta_key(self._prefix, version), fields)
            if not keys:
                return await hmget, []
            meta, values = await asyncio.gather(hmget, self._mget(keys))
            return meta, values
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(meta_key(self._prefix, version), fields)
        if keys:
            pipe.mget(keys)
        replies = await pipe.execute()
        return replies[0], (replies[1] if keys else [])

    async def _fetch_live(self, sk_ids: Sequence[int] | np.ndarray) -> CachedFeatures:
        if self._cluster is not None:
            # A cluster cannot run the script (it builds keys server-side, on any slot): read the live
            # version, then its vectors (a switch in between serves the version read, complete).
            return await self.fetch(sk_ids, version=await self.current_version())
        ids = encode_ids(sk_ids)  # the script builds the keys of the live version
        head = control_head(self._prefix)
        script = self._fetch_current(keys=[current_key(self._prefix)], args=[head, self._prefix, *ids])
        reply: Any = await self._call(script)
        if reply[0] is None:
            # Nothing live: raises NoCurrentVersionError (or, if a switch just happened, reads that one).
            return await self.fetch(sk_ids, version=await self.current_version())
        version = reply[0].decode()
        info = self._parse_meta(version, reply[1])
        matrix, found = decode_vectors(reply[2], info.n_features, self._where)
        return CachedFeatures(matrix, found, version, info.loaded_at)
