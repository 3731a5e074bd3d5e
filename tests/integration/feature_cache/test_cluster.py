"""The feature cache on a real Redis Cluster (three primaries): `cache load|switch|status|drop`, and the
hot-path reader, which reads each batch with one pipeline per node (the keys spread over every node)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson
import pytest
import redis
from typer.testing import CliRunner

from credit_scorer.retry import Backoff
from credit_scorer.settings import RedisSettings
from devtools.redis_cluster import LocalRedisCluster
from feature_cache.cli import app
from feature_cache.exceptions import CacheUnavailableError
from feature_cache.keys import vector_key
from feature_cache.source import RedisFeatureSource
from feature_cache.store import RedisFeatureStore, create_redis_client, create_sync_redis_client
from tests.fixtures.redis import FeatureBuild, small_schema
from tests.fixtures.redis import float_bits as bits

pytestmark = pytest.mark.integration


def run_cli(settings: RedisSettings, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--url", settings.url, "--prefix", settings.key_prefix])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def keys_per_node(cluster: LocalRedisCluster, prefix: str) -> list[int]:
    counts = []
    for port in cluster.ports:
        with redis.Redis(cluster.host, port) as node:
            counts.append(sum(1 for _ in node.scan_iter(match=f"{prefix}:fv:*", count=1_000)))
    return counts


async def test_load_switch_read_status_drop_on_a_cluster(
    cluster_settings: RedisSettings,
    redis_cluster: LocalRedisCluster,
    make_feature_build: Callable[..., FeatureBuild],
) -> None:
    v1 = make_feature_build(n_clients=600, name="v1")
    v2 = make_feature_build(n_clients=50, schema=small_schema(tag="_v2"), name="v2")
    out = run_cli(
        cluster_settings, "load", "--features", str(v1.folder), "--no-progress", "--switch", "--ttl", "900"
    )
    assert f"live feature version: {v1.schema.version} (was none)" in out
    run_cli(cluster_settings, "load", "--features", str(v2.folder), "--no-progress")
    # no hash tag on the vectors: every node holds about a third of the clients
    per_node = keys_per_node(redis_cluster, cluster_settings.key_prefix)
    assert sum(per_node) == 650 and min(per_node) > 650 / 3 * 0.7, per_node

    sync = create_sync_redis_client(cluster_settings)
    assert 0 < sync.ttl(vector_key(cluster_settings.key_prefix, v1.schema.version, int(v1.ids[0]))) <= 900
    sync.close()

    source = RedisFeatureSource(cluster_settings, v1.schema.version, Backoff(0.01, 0.05, max_attempts=2))
    await source.start()
    try:
        asked = np.concatenate([v1.ids[::-3], [1, 2]])  # every node's clients, and two unknown ids
        batch = await source.fetch(asked.tolist())
        assert batch.found.tolist() == [True] * (len(asked) - 2) + [False, False]
        rows = {int(i): k for k, i in enumerate(v1.ids)}
        np.testing.assert_array_equal(
            bits(batch.matrix[:-2]), bits(v1.matrix[[rows[int(i)] for i in asked[:-2]]])
        )
        assert np.isnan(batch.matrix[-2:]).all()
        # redis-py's own cluster MGET (mget_nonatomic) and the live-version read agree with the hot path
        client = create_redis_client(cluster_settings)
        plain = RedisFeatureStore(client, cluster_settings.key_prefix)
        for other in (await plain.fetch(asked, version=v1.schema.version), await plain.fetch(asked)):
            assert other.feature_version == v1.schema.version
            np.testing.assert_array_equal(bits(other.matrix), bits(batch.matrix))
        await client.aclose()
    finally:
        await source.stop()

    out = run_cli(cluster_settings, "switch", v2.schema.version)
    assert f"live feature version: {v2.schema.version} (was {v1.schema.version})" in out
    status = orjson.loads(run_cli(cluster_settings, "status", "--json"))
    assert status["current"] == v2.schema.version
    assert {(v["version"], v["clients"], v["complete"]) for v in status["versions"]} == {
        (v1.schema.version, 600, True),
        (v2.schema.version, 50, True),
    }
    assert status["where"].startswith("redis+cluster://")
    out = run_cli(cluster_settings, "drop", v1.schema.version)
    assert "dropped feature version" in out and ": 602 keys" in out  # 600 vectors, meta, schema
    assert keys_per_node(redis_cluster, cluster_settings.key_prefix) != [0, 0, 0]  # v2's stay
    assert [
        v["version"] for v in orjson.loads(run_cli(cluster_settings, "status", "--json"))["versions"]
    ] == [v2.schema.version]


async def test_a_node_down_is_a_transient_fault_then_reads_resume(
    make_redis_cluster: Callable[[], LocalRedisCluster], make_feature_build: Callable[..., FeatureBuild]
) -> None:
    cluster = make_redis_cluster()
    settings = RedisSettings(url=cluster.url, key_prefix="cs-node-down", socket_timeout_s=0.5)
    build = make_feature_build(n_clients=300)
    run_cli(settings, "load", "--features", str(build.folder), "--no-progress", "--switch")
    source = RedisFeatureSource(settings, build.schema.version, Backoff(0.01, 0.05, max_attempts=2))
    await source.start()
    try:
        assert (await source.fetch(build.ids.tolist())).found.all()
        cluster.kill(1)
        with pytest.raises(CacheUnavailableError):  # the budget spent: the API answers 503 here
            await source.fetch(build.ids.tolist())
        cluster.restart(1)  # its append-only file brings its keys back
        batch = await source.fetch(build.ids.tolist())
        assert batch.found.all()
        np.testing.assert_array_equal(bits(batch.matrix), bits(build.matrix))
    finally:
        await source.stop()
