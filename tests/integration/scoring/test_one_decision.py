"""One decision use case behind the three entry points: for the same application and the same cached
features, the stream worker, ``POST /predict`` and replay publish the same decision — probability (to
the bit), outcome (ACCORD, REFUS or REFER), the policy rules that fired, the policy version and the
reason codes (codes, texts, contributions, the features behind each). Real Tansu, real redis-server,
the real small model and the committed policy; every entry point asked for codes on every decision."""

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
from scoring.policy_file import prepare_with_policy
from stream_app.runtime import BatchRuntime
from stream_app.worker import build_pipeline
from tests.fixtures.kafka import StreamEnv
from tests.fixtures.models import synthetic_amounts_policy

pytestmark = pytest.mark.integration


def decision_of(record: Any) -> tuple[Any, ...]:
    d = decode_decision(record)
    codes = [c.model_dump() for c in d.reason_codes]
    offer = None if d.counter_offer is None else d.counter_offer.model_dump()
    return d.probability_default, d.decision.value, [r.code for r in d.rules], d.policy_version, codes, offer


def answer_of(body: dict[str, Any]) -> tuple[Any, ...]:
    assert body["score"] == 1.0 - body["probability_refusal"]  # the original API's score: P(approval)
    rules = [r["code"] for r in body["rules"]]
    return (
        body["probability_refusal"],
        body["decision"],
        rules,
        body["policy_version"],
        body["reason_codes"],
        body["counter_offer"],
    )


async def test_the_worker_the_api_and_replay_make_the_same_decision(
    make_stream_env: Callable[..., StreamEnv], tmp_path: Path
) -> None:
    env = make_stream_env(partitions=2)
    kafka = env.settings.kafka
    # the committed policy, its credit/goods cap raised to fit the synthetic amounts (credit ~16 x goods)
    path = synthetic_amounts_policy(tmp_path / "policy.yaml")
    policy = env.settings.policy.model_copy(update={"path": path})
    model = prepare_with_policy(env.model.model, policy.path, policy.reason_codes)
    replay_topic = f"replay-{env.topics.applications}"
    await create_topics(kafka.bootstrap_servers, [replay_topic], 2)
    settings = env.settings.model_copy(
        update={
            "kafka": kafka.model_copy(update={"replay_topic": replay_topic}),
            "policy": policy,  # POST /predict loads it from the settings
            "stream": env.settings.stream.model_copy(update={"reasons": "all", "top_reasons": 4}),
            "api": env.settings.api.model_copy(update={"reasons": "all", "top_reasons": 4}),
        }
    )
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(160), id_prefix="one")
    known = int(env.ids[7])
    payloads += [
        # the event's amounts override the cached ones (derived ratios follow)
        (b"one-override", orjson.dumps({"application_id": "one-override", "sk_id_curr": known,
                                        "AMT_CREDIT": 4_000_000.0, "AMT_INCOME_TOTAL": 20_000.0})),
        # a client not in the cache: the application fields alone
        (b"one-unknown", orjson.dumps({"application_id": "one-unknown", "sk_id_curr": 9_999_999,
                                       "AMT_CREDIT": 500_000.0, "NAME_CONTRACT_TYPE": "Cash loans"})),
        # knock-outs: annuity above 60 % of the income, credit above 60 x the goods price
        (b"one-ko", orjson.dumps({"application_id": "one-ko", "sk_id_curr": known, "AMT_ANNUITY": 90_000.0,
                                  "AMT_INCOME_TOTAL": 100_000.0, "AMT_CREDIT": 900_000.0,
                                  "AMT_GOODS_PRICE": 10_000.0})),
    ]  # fmt: skip
    n = len(payloads)

    # the worker (batch engine)
    service = BatchRuntime(settings, build_pipeline(settings, model, ScorerMetrics()))
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
    # every REFER, and only them, also went to the review topic (the same records)
    referred = {k for k, (_, decision, *_) in worker.items() if decision == "REFER"}
    queue = await collect(
        kafka.bootstrap_servers, kafka.review_topic, keys=referred, to_end=True, timeout_s=30
    )
    assert referred and {r.key for r in queue} == referred and len(queue) == len(referred)
    assert all(r.value == next(x.value for x in live if x.key == r.key) for r in queue)

    # replay, with the same model, reasons on every decision
    options = ReplayOptions(
        out_dir=tmp_path / "replay", batch_size=25, reasons="all", top_reasons=4, counter_offers=True
    )
    result = await asyncio.wait_for(Replayer(settings, model, options).run(), 60)
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
        if worker[key][1] != "ACCORD":  # its reasons: the model's codes, or the rules that decided
            # (a knock-out on a row the model finds safe: no feature pushed it towards default)
            assert worker[key][4] or worker[key][2], f"{key!r}: a REFUS or REFER without reasons"
            assert worker[key][4] or worker[key][0] < model.threshold
        assert worker[key][3] == model.policy_version
        assert replay[key] == worker[key], key
        assert api[key] == worker[key], key
    assert {decision for _, decision, *_ in worker.values()} == {"ACCORD", "REFUS", "REFER"}
    assert sum(bool(codes) for _, decision, _, _, codes, _ in worker.values() if decision == "ACCORD") > 10
    assert any(outcome[5] for outcome in worker.values())  # and counter-offers
    assert worker[b"one-override"] != worker[b"one-7"]  # the event's fields were used
    assert worker[b"one-ko"][1] == "REFUS"  # the knock-outs decide, whatever the model says
    assert worker[b"one-ko"][2][:2] == ["KO_ANNUITY_INCOME", "KO_CREDIT_GOODS"]
    assert worker[b"one-unknown"][1] == "REFER"  # unknown client, income and age missing
    assert {"RF_UNKNOWN_CLIENT", "RF_MISSING_FIELDS"} <= set(worker[b"one-unknown"][2])
