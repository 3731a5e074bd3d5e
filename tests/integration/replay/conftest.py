"""Fixtures of the replay tests: a history of applications scored live by the batch engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import Settings
from devtools.harness import application_payloads, collect, create_topics, produce_payloads
from schemas.codec import decode_decision
from stream_app.runtime import BatchRuntime
from stream_app.worker import build_pipeline
from tests.fixtures.kafka import StreamEnv


@dataclass
class History:
    env: StreamEnv
    settings: Settings  # env settings + a fresh replay topic
    rows: list[int]  # feature-table row of each application (application i = row rows[i])
    live: dict[str, Any]  # application id → live Decision


@pytest.fixture
def make_history(make_stream_env: Callable[..., StreamEnv]) -> Callable[..., Any]:
    """Factory: ``await make_history(n)`` → n applications scored live by the batch engine (group commits)."""

    async def make(n: int, partitions: int = 2) -> History:
        env = make_stream_env(partitions=partitions)
        kafka = env.settings.kafka
        replay_topic = f"replay-{env.topics.applications}"
        await create_topics(kafka.bootstrap_servers, [replay_topic], partitions)
        settings = env.settings.model_copy(
            update={"kafka": kafka.model_copy(update={"replay_topic": replay_topic})}
        )
        rows = list(range(n))
        payloads = application_payloads(env.model.schema, env.ids, env.matrix, rows, id_prefix="app")
        service = BatchRuntime(env.settings, build_pipeline(env.settings, env.model, ScorerMetrics()))
        await service.start()
        try:
            await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads)
            keys = {k for k, _ in payloads}
            records = await collect(
                kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, to_end=True, timeout_s=90
            )
        finally:
            await service.stop()
        live = {r.key.decode(): decode_decision(r.value) for r in records}
        assert len(live) == n
        return History(env, settings, rows, live)

    return make
