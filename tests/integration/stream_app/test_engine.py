"""The batch engine on a real Tansu broker and a real redis-server: decisions, dead letters, scores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

from credit_scorer.metrics import ScorerMetrics
from devtools.harness import application_payloads, collect, produce_payloads
from kafka_io.records import InboundRecord
from schemas.codec import decode_dead_letter, decode_decision
from scoring.decide import ScoringInput, decide
from scoring.features import CachedFeatures
from stream_app.runtime import BatchRuntime
from stream_app.worker import build_pipeline
from tests.fixtures.kafka import StreamEnv
from tests.polling import wait_until

pytestmark = pytest.mark.integration


async def start_engine(env: StreamEnv, metrics: ScorerMetrics, **kw: object) -> BatchRuntime:
    pipeline = build_pipeline(env.settings, env.model, metrics, **kw)  # type: ignore[arg-type]
    service = BatchRuntime(env.settings, pipeline)
    await service.start()
    return service


def metric(metrics: ScorerMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


@pytest.mark.parametrize(
    ("inline_score_max", "thread"), [(0, "scorer"), (100_000, "event_loop")], ids=["scorer", "event_loop"]
)
async def test_n_events_give_exactly_n_decisions_with_offline_scores(
    make_stream_env: Callable[..., StreamEnv], inline_score_max: int, thread: str
) -> None:
    """The same decisions whether every batch is scored on the scorer thread or on the event loop."""
    env = make_stream_env(inline_score_max=inline_score_max)
    kafka = env.settings.kafka
    n = 600
    rows = list(range(n))
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, rows, id_prefix="ok")
    metrics = ScorerMetrics()
    observed: list[int] = []
    service = await start_engine(env, metrics, observers=[lambda s: observed.append(len(s.results))])
    try:
        await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads)
        keys = {k for k, _ in payloads}
        records = await collect(
            kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, to_end=True, timeout_s=60
        )
    finally:
        await service.stop()

    assert len(records) == n
    decisions = {r.key: decode_decision(r.value) for r in records}
    assert set(decisions) == {k for k, _ in payloads}
    # offline: the feature-table rows themselves, through the booster and the model card's calibration
    expected = env.model.calibrator.apply(env.model.booster.predict(env.matrix[rows]))
    for i, (key, _) in enumerate(payloads):
        d = decisions[key]
        assert d.application_id == key.decode()
        assert d.sk_id_curr == int(env.ids[i])
        assert d.probability_default == pytest.approx(expected[i], rel=0, abs=1e-12)
        assert d.decision.value == ("REFUS" if expected[i] >= env.model.threshold else "ACCORD")
        assert d.model_version == env.model.model_version
        assert d.feature_version == env.model.feature_version
        assert d.features_found is True and d.features_age_s is not None
        if d.decision.value == "REFUS":
            assert d.reason_codes, "every REFUS carries its reason codes"
        lat = d.latency
        assert lat.total_s >= lat.queue_s >= 0 and lat.inference_s > 0 and lat.features_s > 0
    assert sum(observed) == n
    refus = sum(d.decision.value == "REFUS" for d in decisions.values())
    assert 0 < refus < n
    version = env.model.model_version
    assert (
        metric(
            metrics,
            "credit_scorer_decisions_total",
            {"decision": "REFUS", "model_version": version, "role": "champion"},
        )
        == refus
    )
    assert metric(metrics, "credit_scorer_feature_lookups_total") == n
    assert metric(metrics, "credit_scorer_feature_cache_misses_total") == 0
    assert metric(metrics, "credit_scorer_stage_seconds_count", {"stage": "total"}) == n
    # the worker's own part (consumed → acknowledged) of each decision: inside its event → produced time
    assert metric(metrics, "credit_scorer_worker_latency_seconds_count") == n
    worker_s = metric(metrics, "credit_scorer_worker_latency_seconds_sum")
    assert 0 < worker_s <= metric(metrics, "credit_scorer_stage_seconds_sum", {"stage": "total"})
    assert metric(metrics, "credit_scorer_in_flight_events") == 0
    other = "event_loop" if thread == "scorer" else "scorer"
    assert metric(metrics, "credit_scorer_scored_batches_total", {"thread": thread}) == len(observed)
    assert metric(metrics, "credit_scorer_scored_batches_total", {"thread": other}) == 0


async def test_a_small_batch_is_not_scored_on_the_loop_while_a_batch_is_on_the_scorer_thread(
    make_stream_env: Callable[..., StreamEnv],
) -> None:
    """One decide at a time: a small batch staged while a large one is on the scorer thread goes to the
    thread behind it (not onto the loop beside it); alone, it is scored on the loop. Every batch's
    scores are the offline ones."""
    env = make_stream_env(partitions=1, inline_score_max=32)
    metrics = ScorerMetrics()
    pipeline = build_pipeline(env.settings, env.model, metrics)
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(410), id_prefix="mix")
    records = [InboundRecord("t", 0, i, k, v, 1_700_000_000_000 + i) for i, (k, v) in enumerate(payloads)]
    large, small, alone = records[:400], records[400:405], records[405:]

    def on(thread: str) -> float:
        return metric(metrics, "credit_scorer_scored_batches_total", {"thread": thread})

    await pipeline.start()
    try:
        staged = [await pipeline.stage(batch) for batch in (large, small)]
        both = await asyncio.gather(*(pipeline.finish(b) for b in staged))  # the large one first
        assert (on("scorer"), on("event_loop")) == (2, 0)
        last = await pipeline.finish(await pipeline.stage(alone))
        assert (on("scorer"), on("event_loop")) == (2, 1)
    finally:
        await pipeline.stop()
    # offline: the feature-table rows themselves, through the booster and the model card's calibration
    expected = env.model.calibrator.apply(env.model.booster.predict(env.matrix[:410]))
    for first, prepared in ((0, both[0]), (400, both[1]), (405, last)):
        assert prepared.score is not None and not prepared.dead
        probs = [r.probability for r in prepared.score.results]
        assert len(prepared.decisions) == len(probs)
        assert probs == pytest.approx(expected[first : first + len(probs)].tolist(), rel=0, abs=1e-12)


async def test_malformed_events_are_dead_lettered_and_valid_neighbours_decided(
    make_stream_env: Callable[..., StreamEnv],
) -> None:
    env = make_stream_env(partitions=2)
    kafka = env.settings.kafka
    good = application_payloads(env.model.schema, env.ids, env.matrix, range(40), id_prefix="good")
    unknown = [
        (
            b"unknown-1",
            orjson.dumps({"application_id": "unknown-1", "sk_id_curr": 9_999_999, "AMT_CREDIT": 5e5}),
        )
    ]
    bad = [
        (b"bad-json", b"{not json"),
        (b"bad-schema", orjson.dumps({"application_id": "bad-schema", "sk_id_curr": "abc"})),
        (b"bad-nan", b'{"application_id": "bad-nan", "sk_id_curr": 100001, "AMT_CREDIT": NaN}'),
        (
            b"bad-range",
            orjson.dumps({"application_id": "bad-range", "sk_id_curr": 100001, "AMT_CREDIT": -5.0}),
        ),
        (b"bad-size", b'{"sk_id_curr": 100001, "pad": "' + b"x" * (70 * 1024) + b'"}'),
        (b"bad-hour", orjson.dumps({"sk_id_curr": 100001, "HOUR_APPR_PROCESS_START": 31})),
    ]
    # interleave: every bad event sits between valid ones
    mixed: list[tuple[bytes, bytes]] = []
    for i, rec in enumerate(good):
        mixed.append(rec)
        if i % 7 == 3 and bad:
            mixed.append(bad.pop(0))
    mixed.extend(bad)
    mixed.extend(unknown)
    metrics = ScorerMetrics()
    service = await start_engine(env, metrics)
    try:
        await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, mixed)
        decided = {k for k, _ in good} | {b"unknown-1"}
        decisions = await collect(
            kafka.bootstrap_servers, kafka.decisions_topic, keys=decided, to_end=True, timeout_s=60
        )
        letters = await collect(
            kafka.bootstrap_servers, kafka.dead_letter_topic, 6, to_end=True, timeout_s=30
        )
    finally:
        await service.stop()

    assert {r.key for r in decisions} == {k for k, _ in good} | {b"unknown-1"}
    assert len(decisions) == 41
    by_key = {r.key: decode_decision(r.value) for r in decisions}
    stranger = by_key[b"unknown-1"]
    assert stranger.features_found is False and stranger.features_age_s is None
    solo = decide(
        env.model, [ScoringInput(9_999_999, {"AMT_CREDIT": 5e5})], CachedFeatures.missing(1, env.model.schema)
    )
    assert stranger.probability_default == pytest.approx(solo.results[0].probability, abs=1e-12)

    kinds = {r.key: decode_dead_letter(r.value) for r in letters}
    assert len(letters) == 6
    assert kinds[b"bad-json"].error_kind.value == "bad_json"
    assert kinds[b"bad-schema"].error_kind.value == "schema" and "sk_id_curr" in kinds[b"bad-schema"].message
    assert kinds[b"bad-nan"].error_kind.value == "non_finite"
    assert (
        kinds[b"bad-range"].error_kind.value == "out_of_range" and "AMT_CREDIT" in kinds[b"bad-range"].message
    )
    assert kinds[b"bad-size"].error_kind.value == "oversized"
    assert kinds[b"bad-hour"].error_kind.value == "out_of_range"
    json_letter = kinds[b"bad-json"]
    assert json_letter.payload == b"{not json"
    assert json_letter.source_topic == kafka.applications_topic and json_letter.source_offset is not None
    assert metric(metrics, "credit_scorer_dead_letters_total", {"reason": "out_of_range"}) == 2
    assert metric(metrics, "credit_scorer_feature_cache_misses_total") == 1


async def test_redis_outage_is_retried_without_dead_letters(
    make_stream_env: Callable[..., StreamEnv], tmp_path: Path
) -> None:
    """Redis stops under the worker: the batch waits (retries counted) and is decided once it is back."""
    from devtools.harness import load_cache
    from devtools.launchers import RedisServer
    from tests.fixtures.models import write_feature_dir

    env = make_stream_env(partitions=1)
    own = RedisServer().start()  # our own server: the shared one must not go down under other tests
    try:
        settings = env.settings.model_copy(
            update={"redis": env.settings.redis.model_copy(update={"url": own.url, "socket_timeout_s": 0.5})}
        )
        env = StreamEnv(settings, env.model, env.ids, env.matrix, env.topics)
        feature_dir = write_feature_dir(tmp_path / "features", 2000, 0, env.model.schema)
        load_cache(own.url, settings.redis.key_prefix, feature_dir)
        kafka = settings.kafka
        payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(50), id_prefix="outage")
        metrics = ScorerMetrics()
        service = await start_engine(env, metrics)
        try:
            await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads[:10])
            first = await collect(kafka.bootstrap_servers, kafka.decisions_topic, 10, timeout_s=20)
            assert len(first) == 10
            port = own.port
            own.stop()
            await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads[10:])
            await wait_until(
                lambda: metric(metrics, "credit_scorer_retries_total", {"dependency": "redis"}) >= 3,
                20,
                "redis retries",
            )
            assert metric(metrics, "credit_scorer_feature_lookups_total") == 10  # nothing decided meanwhile
            own = RedisServer(port=port).start()  # back, empty: until the cache is reloaded, still waiting
            load_cache(own.url, settings.redis.key_prefix, feature_dir)
            records = await collect(
                kafka.bootstrap_servers,
                kafka.decisions_topic,
                keys={k for k, _ in payloads},
                to_end=True,
                timeout_s=60,
            )
        finally:
            await service.stop()
    finally:
        own.stop()
    assert {r.key for r in records} == {k for k, _ in payloads}
    assert len(records) == 50
    dead = metrics.registry.get_sample_value
    assert all(
        (dead("credit_scorer_dead_letters_total", {"reason": k}) or 0) == 0
        for k in ("bad_json", "schema", "unscorable", "out_of_range", "non_finite")
    )


async def test_graceful_stop_commits_everything_it_published(
    make_stream_env: Callable[..., StreamEnv],
) -> None:
    """After a clean stop, a new engine in the same group publishes nothing again (no redelivery)."""
    env = make_stream_env(partitions=2)
    kafka = env.settings.kafka
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(200), id_prefix="g")
    metrics = ScorerMetrics()
    service = await start_engine(env, metrics)
    try:
        await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads)
        await wait_until(
            lambda: metric(metrics, "credit_scorer_feature_lookups_total") >= 200, 30, "200 decisions"
        )
    finally:
        await service.stop()
    second_metrics = ScorerMetrics()
    service = await start_engine(env, second_metrics)
    try:
        more = application_payloads(env.model.schema, env.ids, env.matrix, range(200, 210), id_prefix="g2")
        await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, more)
        await wait_until(
            lambda: metric(second_metrics, "credit_scorer_feature_lookups_total") >= 10, 30, "10 more"
        )
    finally:
        await service.stop()
    assert metric(second_metrics, "credit_scorer_feature_lookups_total") == 10
    records = await collect(
        kafka.bootstrap_servers, kafka.decisions_topic, to_end=True, timeout_s=60
    )  # writers stopped
    assert len(records) == 210
    assert np.unique([r.key for r in records]).size == 210


async def test_a_stalled_broker_delays_but_loses_and_dead_letters_nothing(
    make_stream_env: Callable[..., StreamEnv],
) -> None:
    """The broker freezes (SIGSTOP) for a few seconds mid-stream: everything is decided afterwards."""
    import os
    import signal

    from devtools.harness import create_topics
    from devtools.launchers import TansuBroker

    env = make_stream_env(partitions=2)
    broker = TansuBroker().start()  # our own: freezing the shared one would stall other tests
    try:
        topics = env.topics
        await create_topics(
            broker.bootstrap_servers, [topics.applications, topics.decisions, topics.dead_letters], 2
        )
        kafka = env.settings.kafka.model_copy(
            update={"bootstrap_servers": broker.bootstrap_servers, "request_timeout_s": 4.0}
        )
        env = StreamEnv(
            env.settings.model_copy(update={"kafka": kafka}), env.model, env.ids, env.matrix, topics
        )
        payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(400), id_prefix="stall")
        metrics = ScorerMetrics()
        service = await start_engine(env, metrics)
        try:
            await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads[:200])
            assert broker.process is not None
            os.kill(broker.process.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(6.0)  # the outage itself, longer than the request timeout
            finally:
                os.kill(broker.process.pid, signal.SIGCONT)
            await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads[200:])
            records = await collect(
                kafka.bootstrap_servers,
                kafka.decisions_topic,
                keys={k for k, _ in payloads},
                to_end=True,
                timeout_s=90,
            )
        finally:
            await service.stop()
        letters = await collect(kafka.bootstrap_servers, kafka.dead_letter_topic, to_end=True, timeout_s=30)
    finally:
        broker.stop()
    assert {r.key for r in records} == {k for k, _ in payloads}
    assert letters == []
