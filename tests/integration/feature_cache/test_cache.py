"""Client-feature cache against a real redis-server: load, read back, interrupted loads, TTL, drop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from credit_scorer.settings import RedisSettings
from feature_cache.exceptions import FeatureCacheError, FeatureVersionMismatchError, NoCurrentVersionError
from feature_cache.keys import meta_key, schema_key, vector_key
from feature_cache.loader import (
    cache_status,
    drop_version,
    load_features,
    switch_version,
    write_vectors,
)
from feature_cache.store import RedisFeatureStore, create_redis_client
from tests.fixtures.redis import FeatureBuild, small_schema
from tests.fixtures.redis import float_bits as bits

pytestmark = pytest.mark.integration


class Interrupted(Exception):
    pass


async def test_load_then_fetch_returns_every_vector_bit_for_bit(
    make_feature_build: Callable[..., FeatureBuild],
    redis_sync_client: redis.Redis,
    redis_client: redis.asyncio.Redis,
    redis_key_prefix: str,
) -> None:
    build = make_feature_build(n_clients=300)
    summary = load_features(redis_sync_client, build.folder, redis_key_prefix, chunk_clients=64)
    assert (summary.version, summary.clients) == (build.schema.version, 300)
    assert summary.bytes == 300 * len(build.schema) * 4
    switch_version(redis_sync_client, redis_key_prefix, build.schema.version)

    store = RedisFeatureStore(redis_client, redis_key_prefix)
    order = np.random.default_rng(1).permutation(300)
    batch = await store.fetch(build.ids[order].tolist(), version=build.schema.version)
    assert batch.found.all() and batch.feature_version == build.schema.version
    np.testing.assert_array_equal(bits(batch.matrix), bits(build.matrix[order]))
    assert batch.loaded_at is not None and batch.loaded_at > 0

    live = await store.fetch(build.ids[order])  # live version, resolved server-side in the same call
    assert live.feature_version == build.schema.version
    np.testing.assert_array_equal(bits(live.matrix), bits(build.matrix[order]))
    # The build has canonical, payload-carrying and negative NaNs: all survive the round trip.
    assert {0x7FC00000, 0x7FC0BEEF, 0xFFC00001} <= set(np.unique(bits(live.matrix)).tolist())
    assert (await store.schema(build.schema.version)) == build.schema


async def test_unknown_ids_are_not_found_and_get_nan_rows(
    make_feature_build: Callable[..., FeatureBuild],
    redis_sync_client: redis.Redis,
    redis_client: redis.asyncio.Redis,
    redis_key_prefix: str,
) -> None:
    build = make_feature_build(n_clients=50)
    load_features(redis_sync_client, build.folder, redis_key_prefix)
    switch_version(redis_sync_client, redis_key_prefix, build.schema.version)
    store = RedisFeatureStore(redis_client, redis_key_prefix)
    known = int(build.ids[7])
    for version in (build.schema.version, None):
        batch = await store.fetch([1, known, 2, known], version=version)
        assert batch.found.tolist() == [False, True, False, True]
        assert np.isnan(batch.matrix[[0, 2]]).all()
        np.testing.assert_array_equal(bits(batch.matrix[1]), bits(build.matrix[7]))
        only_unknown = await store.fetch([1], version=version)
        assert not only_unknown.found.any() and only_unknown.matrix.shape == (1, len(build.schema))
        empty = await store.fetch([], version=version)
        assert empty.matrix.shape == (0, len(build.schema))


async def test_an_interrupted_load_is_not_switchable_and_a_rerun_completes_it(
    make_feature_build: Callable[..., FeatureBuild],
    redis_sync_client: redis.Redis,
    redis_client: redis.asyncio.Redis,
    redis_key_prefix: str,
) -> None:
    build = make_feature_build(n_clients=200)
    version = build.schema.version
    loaded: list[int] = []

    def stop_after_first_chunk(n: int) -> None:
        loaded.append(n)
        raise Interrupted

    with pytest.raises(Interrupted):
        load_features(
            redis_sync_client,
            build.folder,
            redis_key_prefix,
            chunk_clients=50,
            on_progress=stop_after_first_chunk,
        )
    assert loaded == [50]
    (status,) = cache_status(redis_sync_client, redis_key_prefix).versions
    assert (status.version, status.complete) == (version, False)
    with pytest.raises(FeatureCacheError, match="only partly loaded"):
        switch_version(redis_sync_client, redis_key_prefix, version)
    store = RedisFeatureStore(redis_client, redis_key_prefix)
    with pytest.raises(FeatureVersionMismatchError, match="only partly loaded"):
        await store.fetch(build.ids[:3], version=version)

    summary = load_features(redis_sync_client, build.folder, redis_key_prefix, chunk_clients=50)
    assert summary.clients == 200
    (status,) = cache_status(redis_sync_client, redis_key_prefix).versions
    assert status.complete and status.clients == 200 and status.n_features == len(build.schema)
    assert switch_version(redis_sync_client, redis_key_prefix, version) is None
    batch = await RedisFeatureStore(redis_client, redis_key_prefix).fetch(build.ids)
    assert batch.found.all()
    np.testing.assert_array_equal(bits(batch.matrix), bits(build.matrix))


def test_force_switch_to_an_incomplete_version_and_refusals(
    make_feature_build: Callable[..., FeatureBuild], redis_sync_client: redis.Redis, redis_key_prefix: str
) -> None:
    build = make_feature_build(n_clients=20)
    with pytest.raises(FeatureVersionMismatchError, match="not loaded"):
        switch_version(redis_sync_client, redis_key_prefix, build.schema.version)

    def interrupt(_: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        load_features(
            redis_sync_client, build.folder, redis_key_prefix, chunk_clients=5, on_progress=interrupt
        )
    assert switch_version(redis_sync_client, redis_key_prefix, build.schema.version, force=True) is None
    assert cache_status(redis_sync_client, redis_key_prefix).current == build.schema.version


async def test_drop_removes_every_key_of_an_old_version_only(
    make_feature_build: Callable[..., FeatureBuild],
    redis_sync_client: redis.Redis,
    redis_client: redis.asyncio.Redis,
    redis_key_prefix: str,
) -> None:
    old = make_feature_build(n_clients=120, name="old")
    new = make_feature_build(n_clients=80, schema=small_schema(tag="_v2"), name="new")
    for build in (old, new):
        load_features(redis_sync_client, build.folder, redis_key_prefix, chunk_clients=30)
    switch_version(redis_sync_client, redis_key_prefix, new.schema.version)
    store = RedisFeatureStore(redis_client, redis_key_prefix)
    assert (await store.fetch(old.ids[:5], version=old.schema.version)).found.all()

    assert drop_version(redis_sync_client, redis_key_prefix, old.schema.version, batch=7) == 120 + 2
    assert not list(redis_sync_client.scan_iter(match=f"{redis_key_prefix}:*:{old.schema.version}*"))
    with pytest.raises(FeatureVersionMismatchError, match="not loaded"):
        await RedisFeatureStore(redis_client, redis_key_prefix).fetch(old.ids[:5], version=old.schema.version)
    # A reader that cached the dropped version's facts notices at its next all-miss batch.
    with pytest.raises(FeatureVersionMismatchError, match="not loaded"):
        await store.fetch(old.ids[:5], version=old.schema.version)
    assert (await store.fetch(new.ids)).found.all()
    assert [v.version for v in cache_status(redis_sync_client, redis_key_prefix).versions] == [
        new.schema.version
    ]

    with pytest.raises(FeatureCacheError, match="is live"):
        drop_version(redis_sync_client, redis_key_prefix, new.schema.version)
    assert drop_version(redis_sync_client, redis_key_prefix, new.schema.version, force=True) == 80 + 2
    with pytest.raises(NoCurrentVersionError, match="no feature version is live"):
        await store.fetch(new.ids[:2])
    assert not list(redis_sync_client.scan_iter(match=f"{redis_key_prefix}:*"))


def test_ttl_applies_to_vectors_schema_and_meta(
    make_feature_build: Callable[..., FeatureBuild], redis_sync_client: redis.Redis, redis_key_prefix: str
) -> None:
    build = make_feature_build(n_clients=10)
    v = build.schema.version
    load_features(redis_sync_client, build.folder, redis_key_prefix, ttl_s=600)
    for key in (vector_key(redis_key_prefix, v, int(build.ids[3])), schema_key(redis_key_prefix, v)):
        assert 0 < redis_sync_client.ttl(key) <= 600
    assert 0 < redis_sync_client.ttl(meta_key(redis_key_prefix, v)) <= 600
    load_features(redis_sync_client, build.folder, redis_key_prefix)  # reload without TTL: persistent
    assert redis_sync_client.ttl(vector_key(redis_key_prefix, v, int(build.ids[3]))) == -1
    assert redis_sync_client.ttl(meta_key(redis_key_prefix, v)) == -1
    assert redis_sync_client.ttl(schema_key(redis_key_prefix, v)) == -1


async def test_model_and_cache_versions_must_match(
    make_feature_build: Callable[..., FeatureBuild],
    redis_sync_client: redis.Redis,
    redis_client: redis.asyncio.Redis,
    redis_key_prefix: str,
) -> None:
    store = RedisFeatureStore(redis_client, redis_key_prefix)
    with pytest.raises(NoCurrentVersionError, match="cache load --switch"):
        await store.check_compatible("0123456789abcdef")
    build = make_feature_build(n_clients=10)
    load_features(redis_sync_client, build.folder, redis_key_prefix)
    switch_version(redis_sync_client, redis_key_prefix, build.schema.version)
    await store.check_compatible(build.schema.version)
    with pytest.raises(FeatureVersionMismatchError) as info:
        await store.check_compatible("0123456789abcdef")
    assert build.schema.version in str(info.value) and "0123456789abcdef" in str(info.value)
    with pytest.raises(FeatureVersionMismatchError, match="0123456789abcdef is not loaded"):
        await store.fetch(build.ids[:2], version="0123456789abcdef")
    with pytest.raises(FeatureVersionMismatchError, match="not loaded"):
        await store.schema("0123456789abcdef")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=arrays(
        np.uint32,
        st.tuples(st.integers(1, 12), st.just(9)),
        elements=st.one_of(
            st.integers(0, 2**32 - 1),
            st.sampled_from([0x7F800000, 0xFF800000, 0x80000000, 0x00000001, 0x7FFFFFFF, 0xFFC00000]),
        ),
    )
)
def test_every_float32_bit_pattern_round_trips(
    raw: np.ndarray, redis_settings: RedisSettings, redis_sync_client: redis.Redis
) -> None:
    """Infinities, -0.0, subnormals and NaNs of any payload come back with the very same bits."""
    schema = small_schema(n_cached=6)
    assert len(schema) == raw.shape[1]
    ids = np.arange(1, len(raw) + 1, dtype=np.int64)
    prefix = redis_settings.key_prefix
    write_vectors(redis_sync_client, prefix, schema, ids, raw.view(np.float32))

    async def read() -> np.ndarray:
        client = create_redis_client(redis_settings)
        try:
            batch = await RedisFeatureStore(client, prefix).fetch(ids[::-1], version=schema.version)
        finally:
            await client.aclose()
        assert batch.found.all()
        return batch.matrix

    np.testing.assert_array_equal(bits(asyncio.run(read())), raw[::-1])
