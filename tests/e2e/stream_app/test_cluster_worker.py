"""A worker on a Redis Cluster feature cache: a node SIGKILLed mid-stream, then restarted, loses nothing.

While the node is down its slots are unserved: every batch holding one of its clients fails, which the
worker retries (``credit_scorer_retries_total{dependency="redis"}``) as it does a single Redis being away,
never dead-lettering a valid application. Once the node is back (its append-only file restores its keys)
every application gets its decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from credit_scorer.settings import RedisSettings
from devtools.harness import WorkerProcess, application_payloads, collect, produce_payloads, sample_total
from devtools.launchers import free_port
from devtools.redis_cluster import LocalRedisCluster
from tests.fixtures.kafka import StreamEnv
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e]

N_EVENTS = 3_000
RATE = 300  # events/s: production spans the outage


def redis_retries(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("credit_scorer_retries_total{") and 'dependency="redis"' in line
    )


@pytest.mark.timeout(240)
async def test_a_cluster_node_killed_mid_stream_loses_nothing(
    make_stream_env: Callable[..., StreamEnv],
    make_redis_cluster: Callable[[], LocalRedisCluster],
    tmp_path: Path,
) -> None:
    cluster = make_redis_cluster()
    cache = RedisSettings(url=cluster.url, key_prefix="cs-e2e", socket_timeout_s=0.5)
    env = make_stream_env(partitions=2, redis=cache)
    settings = env.settings.model_copy(
        update={"stream": env.settings.stream.model_copy(update={"metrics_port": free_port()})}
    )
    kafka = settings.kafka
    rows = [i % len(env.ids) for i in range(N_EVENTS)]
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, rows, id_prefix="cluster")
    worker = WorkerProcess(settings, "batch", tmp_path / "worker.log").start()
    producing = asyncio.ensure_future(
        produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads, rate=RATE)
    )
    decided = lambda: sample_total(worker.metrics_text(), "credit_scorer_decisions_total")  # noqa: E731
    try:
        await wait_until(lambda: decided() > 300, 60, "the worker deciding")
        cluster.kill(1)
        # the outage reaches the worker: its batches fail and are retried, not dead-lettered
        await wait_until(lambda: redis_retries(worker.metrics_text()) >= 3, 30, "redis retries")
        during = decided()
        cluster.restart(1)
        await producing
        keys = {k for k, _ in payloads}
        records = await collect(kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, timeout_s=120)
        final = worker.metrics_text()
        assert worker.terminate(30) == 0
    finally:
        producing.cancel()
        worker.kill()
    assert {r.key for r in records} == keys, f"{len(keys - {r.key for r in records})} without a decision"
    assert sample_total(final, "credit_scorer_dead_letters_total") == 0
    assert sample_total(final, "credit_scorer_decisions_total") > during  # it resumed after the restart
