"""The pipelined MGET connection (feature_cache.mget) against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest
import redis
import redis.asyncio
from pydantic import SecretStr

from credit_scorer.settings import RedisSettings
from devtools.launchers import RedisServer
from feature_cache.exceptions import CacheUnavailableError
from feature_cache.loader import load_features, switch_version
from feature_cache.store import RedisFeatureStore, create_redis_client, create_sync_redis_client
from tests.fixtures.redis import FeatureBuild
from tests.fixtures.redis import float_bits as bits

pytestmark = pytest.mark.integration


async def test_pipelined_fetch_equals_redis_py_fetch_under_concurrency(
    make_feature_build: Callable[..., FeatureBuild],
    redis_sync_client: redis.Redis,
    redis_client: redis.asyncio.Redis,
    redis_key_prefix: str,
) -> None:
    build = make_feature_build(n_clients=400)
    load_features(redis_sync_client, build.folder, redis_key_prefix)
    version = build.schema.version
    plain = RedisFeatureStore(redis_client, redis_key_prefix)
    fast = RedisFeatureStore(redis_client, redis_key_prefix, pipelined=True)
    rng = np.random.default_rng(7)
    # Different batches (with unknown ids mixed in) in flight at once on the one pipelined connection:
    # every caller must get its own replies, in its own order.
    batches = [
        np.concatenate([rng.choice(build.ids, size=int(rng.integers(1, 120))), [10**9 + i]])
        for i in range(40)
    ]
    try:
        await fast.fetch(build.ids[:1].tolist(), version=version)  # reads the version's meta
        got = await asyncio.gather(*(fast.fetch(b.tolist(), version=version) for b in batches))
        want = await asyncio.gather(*(plain.fetch(b.tolist(), version=version) for b in batches))
        assert fast._fast is not None and fast._fast._protocol is not None  # the MGETs went pipelined
    finally:
        await fast.aclose()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.found, w.found)
        np.testing.assert_array_equal(bits(g.matrix), bits(w.matrix))
        assert g.found[:-1].all() and not g.found[-1]


async def test_pipelined_fetch_with_password_and_db_survives_a_server_restart(
    make_feature_build: Callable[..., FeatureBuild],
) -> None:
    build = make_feature_build(n_clients=50)
    with RedisServer(password="s3cret") as server:
        port = server.port
        settings = RedisSettings(url=server.url, password=SecretStr("s3cret"), db=3, socket_timeout_s=0.5)
        sync_client = create_sync_redis_client(settings)
        load_features(sync_client, build.folder, "cs")
        switch_version(sync_client, "cs", build.schema.version)
        sync_client.close()
        client = create_redis_client(settings)
        store = RedisFeatureStore(client, "cs", pipelined=True)
        try:
            await store.fetch(build.ids[:1].tolist(), version=build.schema.version)  # meta, via redis-py
            batch = await store.fetch(build.ids[:10].tolist(), version=build.schema.version)
            assert store._fast is not None and store._fast._protocol is not None
            assert batch.found.all()  # AUTH and SELECT 3 were sent: the vectors live in db 3
            np.testing.assert_array_equal(bits(batch.matrix), bits(build.matrix[:10]))

            server.stop()
            with pytest.raises(CacheUnavailableError, match="is unavailable") as info:
                await store.fetch(build.ids[:10].tolist(), version=build.schema.version)
            assert "s3cret" not in str(info.value)
        finally:
            await store.aclose()
            await client.aclose()
    # A new server on the same port (empty): the store reconnects by itself and reads again.
    with RedisServer(port=port, password="s3cret") as again:
        settings = RedisSettings(url=again.url, password=SecretStr("s3cret"), db=3, socket_timeout_s=0.5)
        sync_client = create_sync_redis_client(settings)
        load_features(sync_client, build.folder, "cs")
        sync_client.close()
        client = create_redis_client(settings)
        store = RedisFeatureStore(client, "cs", pipelined=True)
        try:
            await store.fetch(build.ids[:5].tolist(), version=build.schema.version)
            await store.aclose()  # closed, then used again: reconnects lazily
            batch = await store.fetch(build.ids[:5].tolist(), version=build.schema.version)
            assert batch.found.all()
        finally:
            await store.aclose()
            await client.aclose()
