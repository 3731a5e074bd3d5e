"""Replay on a real Tansu broker and a real redis-server: live decisions come from the real batch engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest

from credit_scorer.settings import Settings
from devtools.harness import collect, create_topics, produce_payloads
from kafka_io.partitioner import partition_for
from replay.checkpoint import CheckpointStore
from replay.compare import income_band
from replay.exceptions import CheckpointError
from replay.parallel import ParallelReplayer
from replay.report import REPORT_FILE, SUMMARY_FILE, build_report
from replay.runner import Replayer, ReplayOptions, ReplayResult
from schemas.codec import decode_decision
from scoring.model import load_model
from scoring.prepared import PreparedModel
from tests.integration.replay.conftest import History

pytestmark = pytest.mark.integration


async def committed_offsets(settings: Settings) -> dict[int, int | None]:
    """The live group's committed offsets, read with a consumer of that group (which commits nothing)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    kafka = settings.kafka
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=kafka.consumer_group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(kafka.applications_topic, p) for p in range(kafka.partitions)]
        return {tp.partition: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()


async def replay(history: History, out: Path, model: Any = None, **options: Any) -> ReplayResult:
    replayer = Replayer(history.settings, model or history.env.model, ReplayOptions(out_dir=out, **options))
    return await asyncio.wait_for(replayer.run(), 60)


async def test_replay_with_the_live_model_reproduces_live_decisions_and_leaves_group_offsets(
    make_history: Callable[..., Any], tmp_path: Path
) -> None:
    history = await make_history(400)
    before = await committed_offsets(history.settings)
    assert sum(o or 0 for o in before.values()) == 400, "the live group committed everything it scored"

    result = await replay(history, tmp_path / "same", batch_size=150)

    assert result.status == "complete" and result.rescored == 400 and result.consumed == result.total == 400
    kafka = history.settings.kafka
    records = await collect(kafka.bootstrap_servers, kafka.replay_topic, to_end=True, timeout_s=60)
    replayed = {r.key.decode(): decode_decision(r.value) for r in records}
    assert set(replayed) == set(history.live)
    # same partition count: each decision lands where murmur2 of its key puts it (as the live decisions)
    assert all(r.partition == partition_for(r.key, [0, 1]) for r in records)
    for app_id, live in history.live.items():
        new = replayed[app_id]
        assert new.is_replay and not live.is_replay
        assert (new.decision, new.probability_default) == (live.decision, live.probability_default)
        assert new.model_version == live.model_version == new.baseline_model_version
        assert new.baseline_decision == live.decision
        assert new.baseline_probability_default == live.probability_default
        assert new.sk_id_curr == live.sk_id_curr and new.event_id == live.event_id

    comparison = build_report(tmp_path / "same", plots=False)
    o = comparison.overall
    assert (comparison.rescored, comparison.joined, comparison.unmatched) == (400, 400, 0)
    assert o.accord_to_refus == o.refus_to_accord == 0
    assert o.approval_before == o.approval_after
    assert comparison.shift["max_abs"] == 0.0
    assert await committed_offsets(history.settings) == before


async def test_replay_with_another_model_reports_the_expected_flips_rates_and_cost(
    make_history: Callable[..., Any], make_model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    history = await make_history(300)
    env = history.env
    other = PreparedModel(load_model(make_model_dir(seed=1, n_trees=30)))
    assert (
        other.feature_version == env.model.feature_version and other.model_version != env.model.model_version
    )
    # Hand-made labels: every third client defaulted.
    ids = env.ids[history.rows]
    labels = (np.arange(len(ids)) % 3 == 0).astype(np.int8)
    labels_csv = tmp_path / "labels.csv"
    pl.DataFrame({"SK_ID_CURR": ids, "TARGET": labels}).write_csv(labels_csv)

    kafka = history.settings.kafka
    bad = [(b"bad-1", b"not json"), (b"bad-2", b'{"sk_id_curr": "x"}')]  # the live worker dead-letters these
    await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, bad)

    result = await replay(history, tmp_path / "other", model=other, batch_size=120, publish=False)
    assert result.status == "complete" and result.rescored == 300 and result.consumed == 302
    assert result.counts["invalid_bad_json"] == 1 and result.counts["invalid_schema"] == 1
    c = build_report(tmp_path / "other", labels_csv)

    # Expected answers computed offline from the feature-table rows (what each event carries + cache).
    x = env.matrix[history.rows]
    p_old = env.model.calibrator.apply(env.model.booster.predict(x))
    p_new = other.calibrator.apply(other.booster.predict(x))
    old, new = p_old >= env.model.threshold, p_new >= other.threshold
    assert (old != new).any(), "precondition: the two models disagree somewhere"
    lab1, lab0 = labels == 1, labels == 0

    def cost(refused: np.ndarray, mask: np.ndarray) -> tuple[int, int, float]:
        fn, fp = int((mask & lab1 & ~refused).sum()), int((mask & lab0 & refused).sum())
        return fn, fp, 10.0 * fn + 1.0 * fp

    everyone = np.ones(len(ids), dtype=bool)
    o = c.overall
    assert (o.joined, o.labelled) == (300, 300)
    assert o.accord_to_refus == int((~old & new).sum()) and o.refus_to_accord == int((old & ~new).sum())
    assert o.approval_before == pytest.approx((~old).mean(), abs=1e-12)
    assert o.approval_after == pytest.approx((~new).mean(), abs=1e-12)
    assert (o.fn_before, o.fp_before, o.cost_before) == cost(old, everyone)
    assert (o.fn_after, o.fp_after, o.cost_after) == cost(new, everyone)
    assert c.shift["max_abs"] == pytest.approx(np.abs(p_new - p_old).max(), abs=1e-12)

    schema = env.model.schema
    contract = x[:, schema.index["NAME_CONTRACT_TYPE"]]
    for g in c.by_contract:
        level = schema.fields[schema.index["NAME_CONTRACT_TYPE"]].categories.index(g.name)  # type: ignore[union-attr]
        mask = contract == level
        assert g.joined == int(mask.sum())
        assert g.accord_to_refus == int((mask & ~old & new).sum())
        assert (g.fn_after, g.fp_after, g.cost_after) == cost(new, mask)
    bands = np.array([income_band(float(v)) for v in x[:, schema.index["AMT_INCOME_TOTAL"]]])
    assert sum(g.joined for g in c.by_income) == 300
    for g in c.by_income:
        mask = bands == g.name
        assert g.joined == int(mask.sum()) and (g.fn_before, g.fp_before, g.cost_before) == cost(old, mask)
    flipped = {e["application_id"] for e in c.examples["accord_to_refus"] + c.examples["refus_to_accord"]}
    assert flipped and all(old[int(a.split("-")[1])] != new[int(a.split("-")[1])] for a in flipped)
    report = (tmp_path / "other" / REPORT_FILE).read_text()
    assert f"ACCORD → REFUS: **{o.accord_to_refus}**" in report and other.model_version in report
    for png in ("approval_rate", "score_shift", "cost", "approval_by_segment"):
        assert (tmp_path / "other" / "plots" / f"{png}.png").stat().st_size > 1000


async def test_interrupted_replay_resumes_to_the_same_report(
    make_history: Callable[..., Any], tmp_path: Path
) -> None:
    history = await make_history(300)
    kafka = history.settings.kafka
    three = f"{kafka.replay_topic}-3"  # a replay topic partitioned unlike the applications topic
    await create_topics(kafka.bootstrap_servers, [three], 3)
    history.settings = history.settings.model_copy(
        update={"kafka": kafka.model_copy(update={"replay_topic": three})}
    )
    stop = asyncio.Event()
    out = tmp_path / "resumed"
    first = Replayer(
        history.settings,
        history.env.model,
        ReplayOptions(out_dir=out, batch_size=60),
        stop=stop,
        on_batch=lambda _n: stop.set(),
    )
    interrupted = await asyncio.wait_for(first.run(), 60)
    assert interrupted.status == "interrupted" and interrupted.consumed == 60  # the batch in hand only
    checkpoint = CheckpointStore(out).load()
    assert not checkpoint.complete and sum(checkpoint.next_offsets.values()) == interrupted.consumed

    with pytest.raises(CheckpointError, match="--resume"):
        await replay(history, out, batch_size=60)
    resumed = await replay(history, out, batch_size=60, resume=True)
    assert resumed.status == "complete" and resumed.consumed == resumed.total == 300
    assert resumed.rescored == 300 - interrupted.consumed

    straight = await replay(history, tmp_path / "straight", batch_size=60)
    assert straight.status == "complete"
    build_report(out, plots=False)
    build_report(tmp_path / "straight", plots=False)
    assert (out / REPORT_FILE).read_text() == (tmp_path / "straight" / REPORT_FILE).read_text()
    s1 = orjson.loads((out / SUMMARY_FILE).read_bytes())
    s2 = orjson.loads((tmp_path / "straight" / SUMMARY_FILE).read_bytes())
    assert s1 == s2 and s1["rescored"] == 300
    records = await collect(kafka.bootstrap_servers, three, to_end=True, timeout_s=60)
    assert len({r.key for r in records}) == 300  # every application (re-published ones at least once)
    assert all(r.partition == partition_for(r.key, [0, 1, 2]) for r in records)


async def test_ctrl_c_while_batches_are_read_ahead_stops_at_once(
    make_history: Callable[..., Any], tmp_path: Path
) -> None:
    """The first batch is held until the reading side has filled the queue and blocks on it; stopping
    then must not wait for that side (it is cancelled) and must checkpoint the first batch only."""
    history = await make_history(200, partitions=1)

    class HoldFirstBatch(Replayer):
        prepared = 0

        async def _prepare(self, messages: Any, features: Any) -> Any:
            out = await super()._prepare(messages, features)
            self.prepared += 1
            return out

        async def _finish(self, prepared: Any, baseline: Any, rows: Any) -> Any:
            deadline = asyncio.get_running_loop().time() + 20
            while self.prepared < 5:  # 1 in hand + 3 queued + 1 waiting to be queued
                assert asyncio.get_running_loop().time() < deadline, "the reader did not read ahead"
                await asyncio.sleep(0.01)
            return await super()._finish(prepared, baseline, rows)

    stop = asyncio.Event()
    options = ReplayOptions(out_dir=tmp_path / "ahead", batch_size=20, publish=False)
    replayer = HoldFirstBatch(
        history.settings, history.env.model, options, stop=stop, on_batch=lambda _n: stop.set()
    )
    result = await asyncio.wait_for(replayer.run(), 30)
    assert result.status == "interrupted" and result.consumed == 20 and result.rescored == 20
    assert CheckpointStore(tmp_path / "ahead").load().next_offsets == {0: 20}


async def test_worker_processes_resume_a_single_process_checkpoint_to_the_same_report(
    make_history: Callable[..., Any], tmp_path: Path
) -> None:
    """Two worker processes over four partitions continue a single-process checkpoint: every live decision
    reproduced on the replay topic, the report identical to one process's, the group's offsets intact."""
    history = await make_history(400, partitions=4)
    before = await committed_offsets(history.settings)
    model = history.env.model
    stop = asyncio.Event()
    out = tmp_path / "resumed"
    first = Replayer(
        history.settings,
        model,
        ReplayOptions(out_dir=out, batch_size=50),
        stop=stop,
        on_batch=lambda _: stop.set(),
    )
    interrupted = await asyncio.wait_for(first.run(), 60)
    assert interrupted.status == "interrupted" and 0 < interrupted.consumed < 400

    options = ReplayOptions(out_dir=out, batch_size=50, resume=True, workers=2, checkpoint_every_s=0.0)
    seen: list[tuple[int, int | None]] = []
    parallel = ParallelReplayer(history.settings, model, options, progress=lambda d, t: seen.append((d, t)))
    resumed = await asyncio.wait_for(parallel.run(), 120)
    assert resumed.status == "complete" and resumed.consumed == resumed.total == 400
    assert resumed.rescored == 400 - interrupted.rescored
    assert resumed.counts["rescored"] == resumed.counts["joined"] == 400
    assert seen and seen[-1] == (400, 400)
    checkpoint = CheckpointStore(out).load()
    assert checkpoint.complete and len(checkpoint.parts) > 2 and sum(checkpoint.next_offsets.values()) == 400

    kafka = history.settings.kafka
    records = await collect(kafka.bootstrap_servers, kafka.replay_topic, to_end=True, timeout_s=60)
    replayed = {r.key.decode(): decode_decision(r.value) for r in records}
    assert set(replayed) == set(history.live)
    for app_id, live in history.live.items():
        new = replayed[app_id]
        assert (new.decision, new.probability_default) == (live.decision, live.probability_default)
        assert new.baseline_decision == live.decision and new.baseline_model_version == live.model_version

    straight = await replay(history, tmp_path / "straight", batch_size=50, publish=False)
    assert straight.status == "complete"
    build_report(out, plots=False)
    build_report(tmp_path / "straight", plots=False)
    assert (out / REPORT_FILE).read_text() == (tmp_path / "straight" / REPORT_FILE).read_text()
    assert orjson.loads((out / SUMMARY_FILE).read_bytes())["joined"] == 400
    assert await committed_offsets(history.settings) == before


async def test_replay_waits_out_a_redis_outage_as_the_worker_does(
    make_history: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops after the first batch and comes back empty: replay retries (the worker's policy)
    until the cache is reloaded, then completes with every live decision reproduced."""
    from devtools.harness import load_cache
    from devtools.launchers import RedisServer
    from tests.fixtures.models import write_feature_dir
    from tests.polling import wait_until

    history = await make_history(200, partitions=1)
    own = RedisServer().start()  # our own server: the shared one must not go down under other tests
    try:
        prefix = history.settings.redis.key_prefix
        feature_dir = write_feature_dir(tmp_path / "features", 2000, 0, history.env.model.schema)
        load_cache(own.url, prefix, feature_dir)  # the same vectors as the live worker read
        redis = history.settings.redis.model_copy(update={"url": own.url, "socket_timeout_s": 0.5})
        settings = history.settings.model_copy(update={"redis": redis})
        down = asyncio.Event()

        def after_batch(rescored: int) -> None:
            if not down.is_set():
                own.stop()
                down.set()

        options = ReplayOptions(out_dir=tmp_path / "outage", batch_size=20, publish=False)
        replayer = Replayer(settings, history.env.model, options, on_batch=after_batch)
        run = asyncio.create_task(replayer.run())
        await wait_until(down.is_set, 30, "the first batch")
        await wait_until(lambda: "redis unavailable" in caplog.text, 20, "replay retrying Redis")
        assert not run.done()
        port = own.port
        own = RedisServer(port=port).start()  # back, but empty: replay keeps waiting for the version
        load_cache(own.url, prefix, feature_dir)
        result = await asyncio.wait_for(run, 60)
    finally:
        own.stop()
    assert result.status == "complete" and result.rescored == 200
    assert result.counts["rescored"] == result.counts["joined"] == 200
    comparison = build_report(tmp_path / "outage", plots=False)
    assert comparison.overall.accord_to_refus == comparison.overall.refus_to_accord == 0
    assert comparison.shift["max_abs"] == 0.0
