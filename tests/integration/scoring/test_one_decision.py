"""One decision use case behind the three entry points: for the same application and the same cached
features, the stream worker, ``POST /predict`` and replay publish the same decision — probability (to
the bit), label and reasons (features, values, contributions). Real Tansu, real redis-server, the real
small model; every entry point asked for reasons on every decision."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from credit_scorer.metrics import ScorerMetrics
from devtools.harness import application_payloads, collect, create_topics, produce_payloads
from replay.runner import Replayer, ReplayOptions
from schemas.codec import decode_decision
from stream_app.runtime import BatchRuntime
from stream_app.worker import build_pipeline
from tests.fixtures.kafka import StreamEnv

pytestmark = pytest.mark.integration


Outcome = tuple[float, str, list[tuple[str, Any, float]], dict[str, float] | None]


def decision_of(record: Any) -> Outcome:
    d = decode_decision(record)
    offer = None if d.counter_offer is None else d.counter_offer.model_dump()
    return (
        d.probability_default,
        d.decision.value,
        [(r.feature, r.value, r.contribution) for r in d.reasons],
        offer,
    )


def answer_of(body: dict[str, Any]) -> Outcome:
    assert body["score"] == 1.0 - body["probability_refusal"]  # the original API's score: P(approval)
    return (
        body["probability_refusal"],
        body["decision"],
        [(r["feature"], r["value"], r["contribution"]) for r in body["reasons"]],
        body["counter_offer"],
    )


async def test_the_worker_the_api_and_replay_make_the_same_decision(
    make_stream_env: Callable[..., StreamEnv], tmp_path: Path
) -> None:
    env = make_stream_env(partitions=2)
    kafka = env.settings.kafka
    replay_topic = f"replay-{env.topics.applications}"
    await create_topics(kafka.bootstrap_servers, [replay_topic], 2)
    settings = env.settings.model_copy(
        update={
            "kafka": kafka.model_copy(update={"replay_topic": replay_topic}),
            "stream": env.settings.stream.model_copy(update={"reasons": "all", "top_reasons": 3}),
            "api": env.settings.api.model_copy(update={"reasons": "all", "top_reasons": 3}),
        }
    )
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(60), id_prefix="one")
    known = int(env.ids[7])
    payloads += [
        # the event's amounts override the cached ones (derived ratios follow)
        (b"one-override", orjson.dumps({"application_id": "one-override", "sk_id_curr": known,
                                        "AMT_CREDIT": 4_000_000.0, "AMT_INCOME_TOTAL": 20_000.0})),
        # a client not in the cache: the application fields alone
        (b"one-unknown", orjson.dumps({"application_id": "one-unknown", "sk_id_curr": 9_999_999,
                                       "AMT_CREDIT": 500_000.0, "NAME_CONTRACT_TYPE": "Cash loans"})),
    ]  # fmt: skip
    n = len(payloads)

    # the worker (batch engine)
    service = BatchRuntime(settings, build_pipeline(settings, env.model, ScorerMetrics()))
    await service.start()
    try:
        await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads)
        keys = {k for k, _ in payloads}
        live = await collect(
            kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, to_end=True, timeout_s=90
        )
    finally:
        await service.stop()
    worker = {r.key: decision_of(r.value) for r in live}
    assert len(live) == n and set(worker) == {k for k, _ in payloads}

    # replay, with the same model, reasons on every decision
    options = ReplayOptions(
        out_dir=tmp_path / "replay", batch_size=25, reasons="all", top_reasons=3, counter_offers=True
    )
    result = await asyncio.wait_for(Replayer(settings, env.model, options).run(), 60)
    assert result.status == "complete" and result.rescored == n
    replayed = await collect(kafka.bootstrap_servers, replay_topic, to_end=True, timeout_s=60)  # replay done
    replay = {r.key: decision_of(r.value) for r in replayed}

    # POST /predict with the same client and fields
    with TestClient(create_app(settings)) as client:
        api = {}
        for key, value in payloads:
            body = {k: v for k, v in orjson.loads(value).items() if k != "application_id"}
            response = client.post("/predict", json=body)
            assert response.status_code == 200, response.text
            api[key] = answer_of(response.json())

    for key, _ in payloads:
        assert worker[key][2], f"{key!r}: every decision carries reasons here"
        assert replay[key] == worker[key], key
        assert api[key] == worker[key], key
    assert len({outcome[1] for outcome in worker.values()}) == 2  # both labels were exercised
    assert any(outcome[3] for outcome in worker.values())  # and counter-offers
    assert worker[b"one-override"] != worker[b"one-7"]  # the event's fields were used
