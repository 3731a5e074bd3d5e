"""The worker's start-up on a real Tansu broker: the group joined while the model loads, then adopted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from credit_scorer.metrics import ScorerMetrics
from devtools.harness import application_payloads, collect, produce_payloads
from kafka_io.config import consumer_kwargs
from stream_app.runtime import BatchRuntime
from stream_app.startup import load_while_joining
from stream_app.worker import build_pipeline
from tests.fixtures.kafka import StreamEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def loop() -> Any:
    """The thread's loop as the Faust worker would find it (load_while_joining runs the join on it)."""
    from mode.utils.loops import get_event_loop

    loop = get_event_loop()
    yield loop
    loop.run_until_complete(asyncio.sleep(0))


def test_the_consumer_joined_while_loading_is_adopted_and_decides_everything(
    make_stream_env: Callable[..., StreamEnv], loop: asyncio.AbstractEventLoop
) -> None:
    env = make_stream_env()
    kafka = env.settings.kafka
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(300), id_prefix="early")
    loop.run_until_complete(produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads))

    model, joined = load_while_joining(env.settings, lambda: env.model)
    assert model is env.model
    assert joined is not None
    service = BatchRuntime(env.settings, build_pipeline(env.settings, model, ScorerMetrics()), joined)
    loop.run_until_complete(service.start())
    try:
        assert service.source.consumer is joined.consumer  # adopted, not a second member
        records = loop.run_until_complete(
            collect(
                kafka.bootstrap_servers, kafka.decisions_topic, keys={k for k, _ in payloads}, timeout_s=60
            )
        )
    finally:
        loop.run_until_complete(service.stop())
    assert {r.key for r in records} == {k for k, _ in payloads}


def test_a_model_that_fails_to_load_leaves_the_group_and_is_the_one_error(
    make_stream_env: Callable[..., StreamEnv],
    loop: asyncio.AbstractEventLoop,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = make_stream_env()

    def load() -> None:  # fails once the early member got its partitions (the worker's log says so)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "model still loading" not in caplog.text:
            time.sleep(0.05)
        raise FileNotFoundError("no-such-model")

    caplog.set_level(logging.INFO)
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        load_while_joining(env.settings, load)
    assert "model still loading" in caplog.text  # it had joined
    assert not [r for r in caplog.records if r.name.startswith("aiokafka")]  # held, then dropped

    async def members_after_a_new_join() -> int:
        # the early member left: a new one becomes the group's only member and gets every partition
        kwargs = consumer_kwargs(env.settings.kafka, 10)
        consumer = AIOKafkaConsumer(env.settings.kafka.applications_topic, **kwargs)
        await consumer.start()
        try:
            loop_time = asyncio.get_running_loop().time
            deadline = loop_time() + 30
            while not consumer.assignment() and loop_time() < deadline:
                await consumer.getmany(timeout_ms=100)
            return len(consumer.assignment())
        finally:
            await consumer.stop()

    assert loop.run_until_complete(members_after_a_new_join()) == env.topics.partitions
