"""A version switch while readers run: each batch is wholly one version, never an error or a mix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest
import redis
import redis.asyncio

from feature_cache.loader import load_features, switch_version
from feature_cache.store import RedisFeatureStore
from tests.fixtures.redis import FeatureBuild, small_schema
from tests.fixtures.redis import float_bits as bits

pytestmark = pytest.mark.integration


async def test_switch_while_readers_run(
    make_feature_build: Callable[..., FeatureBuild],
    redis_sync_client: redis.Redis,
    redis_client: redis.asyncio.Redis,
    redis_key_prefix: str,
) -> None:
    # Two versions with different clients, values AND widths: any mix would fail `check`.
    v1 = make_feature_build(n_clients=400, seed=1, name="v1")
    v2 = make_feature_build(n_clients=400, seed=2, schema=small_schema(n_cached=9, tag="_v2"), name="v2")
    load_features(redis_sync_client, v1.folder, redis_key_prefix)
    switch_version(redis_sync_client, redis_key_prefix, v1.schema.version)

    store = RedisFeatureStore(redis_client, redis_key_prefix)
    expected = {b.schema.version: b for b in (v1, v2)}
    seen: list[str] = []
    pinned_batches = 0
    stop = asyncio.Event()

    def check(batch_ids: np.ndarray, batch_version: str, matrix: np.ndarray, found: np.ndarray) -> None:
        build = expected[batch_version]
        rows = {int(i): k for k, i in enumerate(build.ids)}
        want = [rows.get(int(i)) for i in batch_ids]
        assert found.tolist() == [w is not None for w in want]
        hits = [w for w in want if w is not None]
        np.testing.assert_array_equal(bits(matrix[found]), bits(build.matrix[hits]))

    async def live_reader() -> None:
        rng = np.random.default_rng(0)
        pool = np.concatenate([v1.ids, v2.ids])
        while not stop.is_set():
            batch_ids = rng.choice(pool, size=100)
            batch = await store.fetch(batch_ids)
            check(batch_ids, batch.feature_version, batch.matrix, batch.found)
            if not seen or seen[-1] != batch.feature_version:
                seen.append(batch.feature_version)
            await asyncio.sleep(0)

    async def pinned_reader() -> None:  # a worker whose model expects v1 keeps reading v1
        nonlocal pinned_batches
        while not stop.is_set():
            batch = await store.fetch(v1.ids[:50], version=v1.schema.version)
            check(v1.ids[:50], batch.feature_version, batch.matrix, batch.found)
            assert batch.feature_version == v1.schema.version
            pinned_batches += 1
            await asyncio.sleep(0)

    readers = [asyncio.create_task(live_reader()), asyncio.create_task(pinned_reader())]
    # Load v2 while v1 is being read, then flip back and forth until the live reader saw each flip.
    await asyncio.to_thread(load_features, redis_sync_client, v2.folder, redis_key_prefix, chunk_clients=50)
    deadline = time.monotonic() + 20
    target = v2.schema.version
    while len(seen) < 5 and time.monotonic() < deadline:
        await asyncio.to_thread(switch_version, redis_sync_client, redis_key_prefix, target)
        while (
            (not seen or seen[-1] != target)
            and time.monotonic() < deadline
            and not any(r.done() for r in readers)
        ):
            await asyncio.sleep(0.001)
        if any(r.done() for r in readers):
            break
        target = v1.schema.version if target == v2.schema.version else v2.schema.version
    stop.set()
    await asyncio.gather(*readers)  # re-raises any reader failure (mixed batch, error)
    assert len(seen) >= 5, f"the live reader saw only {seen} before the deadline"
    assert pinned_batches > 0
