"""RedisFeatureSource (the worker's, the API's and replay's feature source) on a real redis-server: the
model's version as CachedFeatures, one retry policy through an outage, a budget, a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from credit_scorer.exceptions import StoppedError
from credit_scorer.metrics import ScorerMetrics
from credit_scorer.retry import Backoff
from credit_scorer.settings import RedisSettings
from devtools.harness import load_cache
from devtools.launchers import RedisServer
from feature_cache.exceptions import CacheUnavailableError, FeatureVersionMismatchError
from feature_cache.source import RedisFeatureSource
from scoring.features import CachedFeatures
from tests.fixtures.redis import float_bits
from tests.polling import wait_until

pytestmark = pytest.mark.integration

UNKNOWN = 42  # below the builds' first id


def retries(metrics: ScorerMetrics) -> float:
    return metrics.registry.get_sample_value("credit_scorer_retries_total", {"dependency": "redis"}) or 0.0


async def test_fetch_returns_the_cores_cached_features_of_the_models_version(
    redis_settings: RedisSettings, make_feature_build: Callable[..., Any]
) -> None:
    build = make_feature_build(n_clients=50)
    version = load_cache(redis_settings.url, redis_settings.key_prefix, build.folder)
    source = RedisFeatureSource(redis_settings, version, Backoff(0.01, 0.02))
    await source.start()
    try:
        ids = [int(build.ids[3]), UNKNOWN, int(build.ids[0])]
        got = await source.fetch(ids)
        assert isinstance(got, CachedFeatures) and got.feature_version == version
        assert got.found.tolist() == [True, False, True] and got.loaded_at is not None
        np.testing.assert_array_equal(float_bits(got.matrix[[0, 2]]), float_bits(build.matrix[[3, 0]]))
        assert np.isnan(got.matrix[1]).all()
        await source.check_loaded()
    finally:
        await source.stop()


async def test_a_version_not_loaded_is_refused_by_check_loaded_and_spends_a_budget(
    redis_settings: RedisSettings,
) -> None:
    source = RedisFeatureSource(redis_settings, "0123456789abcdef", Backoff(0.01, 0.02, max_attempts=2))
    await source.start()  # warns: nothing live
    try:
        with pytest.raises(FeatureVersionMismatchError, match="0123456789abcdef"):
            await source.check_loaded()
        with pytest.raises(FeatureVersionMismatchError):
            await source.fetch([1])
    finally:
        await source.stop()


async def test_an_outage_is_waited_out_then_the_batch_is_read(
    make_feature_build: Callable[..., Any], redis_key_prefix: str
) -> None:
    """What the worker and replay do: no budget, the fetch returns once Redis is back and loaded."""
    build = make_feature_build(n_clients=30)
    own = RedisServer().start()  # our own server: the shared one must not go down under other tests
    try:
        settings = RedisSettings(url=own.url, key_prefix=redis_key_prefix, socket_timeout_s=0.5)
        version = load_cache(own.url, redis_key_prefix, build.folder)
        metrics = ScorerMetrics()
        source = RedisFeatureSource(settings, version, Backoff(0.05, 0.2), metrics=metrics)
        await source.start()
        try:
            assert (await source.fetch([int(build.ids[1])])).found.all()
            port = own.port
            own.stop()
            fetch = asyncio.create_task(source.fetch([int(build.ids[1]), UNKNOWN], stopping=asyncio.Event()))
            await wait_until(lambda: retries(metrics) >= 3, 20, "redis retries")
            assert not fetch.done()
            own = RedisServer(port=port).start()  # back, but empty: still waiting until it is loaded
            await wait_until(lambda: retries(metrics) >= 5, 20, "retries while the version is missing")
            assert not fetch.done()
            load_cache(own.url, redis_key_prefix, build.folder)
            got = await asyncio.wait_for(fetch, 20)
            assert got.found.tolist() == [True, False]
            np.testing.assert_array_equal(float_bits(got.matrix[0]), float_bits(build.matrix[1]))
        finally:
            await source.stop()
    finally:
        own.stop()


async def test_a_budget_answers_promptly_and_a_stop_ends_the_wait(
    make_feature_build: Callable[..., Any], redis_key_prefix: str
) -> None:
    """The API's budget: a fault after its attempts; the worker's stop: StoppedError, at once."""
    build = make_feature_build(n_clients=5)
    own = RedisServer().start()
    version = load_cache(own.url, redis_key_prefix, build.folder)
    settings = RedisSettings(url=own.url, key_prefix=redis_key_prefix, socket_timeout_s=0.5)
    own.stop()
    metrics = ScorerMetrics()
    budget = RedisFeatureSource(settings, version, Backoff(0.01, 0.02, max_attempts=3), metrics=metrics)
    await budget.start()
    try:
        with pytest.raises(CacheUnavailableError, match="unavailable"):
            await asyncio.wait_for(budget.fetch([int(build.ids[0])]), 10)
        assert retries(metrics) == 2
    finally:
        await budget.stop()
    waits = ScorerMetrics()
    patient = RedisFeatureSource(settings, version, Backoff(30.0, 30.0), metrics=waits)
    await patient.start()
    try:
        stopping = asyncio.Event()
        fetch = asyncio.create_task(patient.fetch([int(build.ids[0])], stopping=stopping))
        await wait_until(lambda: retries(waits) == 1, 10, "the first retry's 30 s wait")
        stopping.set()
        with pytest.raises(StoppedError, match="redis"):
            await asyncio.wait_for(fetch, 5)
    finally:
        await patient.stop()
