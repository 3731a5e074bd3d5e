"""Version management of the client-feature cache: switch a loaded version live, drop one, status.

:func:`switch_version` changes ``{p}:current`` atomically (a Lua check-and-set that refuses a version
whose meta is missing or not complete, unless forced). :func:`drop_version` deletes the meta first (so
the version can no longer be switched to), then the vectors with SCAN + UNLINK in batches (never KEYS).
:func:`cache_status` reads the live version and every version's meta. Loading a version is
:mod:`feature_cache.loader`'s job. Synchronous on purpose: run from the CLI, never in a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis

from feature_cache.exceptions import FeatureCacheError, FeatureVersionMismatchError
from feature_cache.keys import (
    current_key,
    meta_key,
    meta_pattern,
    schema_key,
    vector_pattern,
    version_of_meta_key,
)
from feature_cache.store import SyncClient, describe_client, translate_redis_error

T = TypeVar("T")

_SWITCH_LUA = """
local complete = redis.call('HGET', KEYS[2], 'complete')
if not complete then return {'missing', false} end
if redis.call('EXISTS', KEYS[3]) == 0 then return {'missing', false} end
if complete ~= '1' and ARGV[2] ~= '1' then return {'incomplete', false} end
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
return {'ok', old}
"""

_UNSET_CURRENT_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class VersionStatus:
    version: str
    live: bool
    complete: bool
    clients: int | None
    bytes: int | None
    n_features: int | None
    loaded_at: float | None
    source: str | None


@dataclass(frozen=True)
class CacheStatus:
    where: str
    prefix: str
    current: str | None
    versions: tuple[VersionStatus, ...]


def redis_call(where: str, call: Callable[[], T]) -> T:
    """``call()``, with a Redis or connection failure raised as the cache's own error naming ``where``."""
    try:
        return call()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise translate_redis_error(exc, where) from exc


def switch_version(client: SyncClient, prefix: str, version: str, *, force: bool = False) -> str | None:
    """Make ``version`` live atomically; returns the previous live version (None if there was none)."""
    where = describe_client(client)
    keys = [current_key(prefix), meta_key(prefix, version), schema_key(prefix, version)]
    script = client.register_script(_SWITCH_LUA)
    status, old = redis_call(where, lambda: script(keys=keys, args=[version, "1" if force else "0"]))
    status = status.decode() if isinstance(status, bytes) else status
    if status == "missing":
        raise FeatureVersionMismatchError(
            f"feature version {version} is not loaded in the Redis cache at {where} (prefix {prefix!r})"
        )
    if status == "incomplete":
        raise FeatureCacheError(
            f"feature version {version} is only partly loaded in Redis at {where}: re-run the load "
            "(or --force to switch anyway)"
        )
    return old.decode() if isinstance(old, bytes) else None


def drop_version(
    client: SyncClient, prefix: str, version: str, *, force: bool = False, batch: int = 1_000
) -> int:
    """Delete every key of ``version`` (meta first, so it can no longer be switched to); returns count.

    Refuses the live version unless ``force`` (which also clears ``{p}:current``).
    """
    where = describe_client(client)
    current = redis_call(where, lambda: client.get(current_key(prefix)))
    if current is not None and _text(current) == version:
        if not force:
            raise FeatureCacheError(
                f"feature version {version} is live in Redis at {where}: switch to another version first "
                "(or --force to drop it and leave nothing live)"
            )
        unset = client.register_script(_UNSET_CURRENT_LUA)
        redis_call(where, lambda: unset(keys=[current_key(prefix)], args=[version]))
    removed = int(redis_call(where, lambda: client.unlink(meta_key(prefix, version))))
    pending: list[bytes] = []

    def scan_and_unlink() -> int:
        count = 0
        for key in client.scan_iter(match=vector_pattern(prefix, version), count=batch):
            pending.append(key)
            if len(pending) >= batch:
                count += int(client.unlink(*pending))
                pending.clear()
        if pending:
            count += int(client.unlink(*pending))
            pending.clear()
        return count

    removed += redis_call(where, scan_and_unlink)
    removed += int(redis_call(where, lambda: client.unlink(schema_key(prefix, version))))
    return removed


def _int(value: bytes | str | None) -> int | None:
    return int(value) if value is not None else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def cache_status(client: SyncClient, prefix: str) -> CacheStatus:
    """Live version and the meta of every version under ``prefix`` (SCAN over meta keys only)."""
    where = describe_client(client)

    def read() -> CacheStatus:
        raw_current = client.get(current_key(prefix))
        current = _text(raw_current) if raw_current is not None else None
        versions = []
        for key in sorted(client.scan_iter(match=meta_pattern(prefix), count=1_000)):
            version = version_of_meta_key(prefix, key)
            meta = {_text(k): v for k, v in client.hgetall(key).items()}
            versions.append(
                VersionStatus(
                    version=version,
                    live=version == current,
                    complete=meta.get("complete") in (b"1", "1"),
                    clients=_int(meta.get("clients")),
                    bytes=_int(meta.get("bytes")),
                    n_features=_int(meta.get("n_features")),
                    loaded_at=float(meta["loaded_at"]) if "loaded_at" in meta else None,
                    source=_text(meta["source"]) if "source" in meta else None,
                )
            )
        return CacheStatus(where=where, prefix=prefix, current=current, versions=tuple(versions))

    return redis_call(where, read)
