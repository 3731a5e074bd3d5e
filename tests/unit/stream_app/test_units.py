"""Pure pieces of the stream worker: bulk histogram observation, the engine's isolation of unscorable
rows, the seek-safe Faust consumer. (The retry policy is tested in tests/unit/credit_scorer.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from credit_scorer.metrics import LATENCY_BUCKETS, ScorerMetrics
from stream_app.metric_batch import observe_many


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=0, max_size=200))
def test_observe_many_equals_one_observe_per_value(values: list[float]) -> None:
    r1, r2 = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("x_seconds", "x", buckets=LATENCY_BUCKETS, registry=r1)
    h2 = Histogram("x_seconds", "x", buckets=LATENCY_BUCKETS, registry=r2)
    observe_many(h1, np.asarray(values))
    for v in values:
        h2.observe(v)

    def lines(r: CollectorRegistry) -> list[str]:
        return [
            line
            for line in generate_latest(r).decode().splitlines()
            if "created" not in line and "_sum" not in line
        ]

    assert lines(r1) == lines(r2)
    s1 = r1.get_sample_value("x_seconds_sum") or 0.0
    assert s1 == pytest.approx(sum(values), rel=1e-9, abs=1e-9)


def test_a_row_the_scorer_cannot_use_is_dead_lettered_and_the_rest_scored(small_model_dir: Path) -> None:
    """InvalidInputError on one row: that row → `unscorable` dead letter, the other rows are decided."""
    from dataclasses import replace

    from credit_scorer.settings import Settings
    from feature_loader.feature_schema import FeatureField, FeatureKind, FeatureSchema
    from kafka_io.records import InboundRecord
    from schemas.codec import parse_application
    from scoring.features import CachedFeatures
    from scoring.model import load_model
    from scoring.prepared import PreparedModel
    from stream_app.engine import MicroBatchPipeline
    from stream_app.sink import DecisionSink

    model = load_model(small_model_dir)
    # a schema that reads the contract type as a number: a text value is then unusable for the scorer
    fields = tuple(
        FeatureField(name=f.name, kind=FeatureKind.NUMERIC, source=f.source)
        if f.name == "NAME_CONTRACT_TYPE"
        else f
        for f in model.schema.fields
    )
    odd = PreparedModel(replace(model, schema=FeatureSchema(fields=fields)))
    settings, metrics = Settings(), ScorerMetrics()
    sink = DecisionSink(settings, metrics, producer_factory=lambda: None)  # never started: no publishing
    pipeline = MicroBatchPipeline(settings, odd, None, metrics, sink=sink)  # type: ignore[arg-type]
    payloads = [
        b'{"application_id": "a", "sk_id_curr": 100001, "AMT_CREDIT": 1000.0}',
        b'{"application_id": "b", "sk_id_curr": 100002, "NAME_CONTRACT_TYPE": "Cash loans"}',
        b'{"application_id": "c", "sk_id_curr": 100003}',
    ]
    records = [InboundRecord("t", 0, i, None, p, 0) for i, p in enumerate(payloads)]
    apps = [parse_application(p, 65536) for p in payloads]
    n = len(odd.schema)
    cached = CachedFeatures(np.full((3, n), np.nan, np.float32), np.zeros(3, bool), odd.feature_version, None)
    kept, _, bad, score = pipeline._score(pipeline.model, apps, cached, records)
    assert [a.application_id for a in kept] == ["a", "c"]
    assert score is not None and len(score.results) == 2
    assert len(bad) == 1 and bad[0][0].offset == 1
    assert bad[0][1].kind.value == "unscorable" and "NAME_CONTRACT_TYPE" in bad[0][1].message


async def _commit_after_stale_record(app_class: type) -> int | None:
    """Faust's bookkeeping after a seek back to committed offset 100 and a stale record 110 arriving."""
    from faust.types import TP

    app = app_class("t-gap", broker="kafka://127.0.0.1:1", web_enabled=False)
    consumer = app.consumer  # created lazily, no connection
    tp = TP("apps", 0)
    consumer._committed_offset[tp] = 100
    consumer._read_offset[tp] = 100  # what perform_seek() sets
    # _drain_messages on offset 110 when _read_offset is 100: "gap" 101..110 (compaction, txn markers)
    await consumer._add_gap(tp, 101, 110)
    consumer._acked[tp].append(110)  # the stale record is processed and acked
    consumer._acked_index[tp].add(110)
    return consumer._new_offset(tp)  # the offset Faust would commit


async def test_stock_faust_commits_over_unprocessed_offsets_and_seek_safe_does_not() -> None:
    import faust

    from stream_app.faust_consumer import SeekSafeApp

    assert await _commit_after_stale_record(faust.App) == 111  # 100..109 never processed: lost
    assert await _commit_after_stale_record(SeekSafeApp) is None  # no commit past the hole


async def test_seek_safe_consumer_drops_records_fetched_before_a_seek(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from collections import namedtuple

    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types import TP

    from stream_app.faust_consumer import SeekSafeApp

    app = SeekSafeApp("t-seek", broker="kafka://127.0.0.1:1", web_enabled=False)
    consumer = app.consumer
    rec = namedtuple("rec", "offset")
    tp0, tp1 = TP("apps", 0), TP("apps", 1)
    fetched = {tp0: [rec(110), rec(111)], tp1: [rec(50), rec(51)]}

    async def fetch(self: object, timeout: float) -> tuple[dict[TP, list[rec]], set[TP]]:
        return dict(fetched), {tp0, tp1}

    monkeypatch.setattr(faust_aiokafka.ThreadDelegateConsumer, "_wait_next_records", fetch)
    consumer._read_offset[tp0] = 100  # perform_seek() moved partition 0 back to committed offset 100
    consumer._read_offset[tp1] = 49  # partition 1: last record handed to the stream was 49
    records, _ = await consumer._wait_next_records(1.0)
    assert records == {tp1: fetched[tp1]}  # 110.. came from before the seek: dropped, re-fetched from 100
    consumer._read_offset[tp0] = 109
    records, _ = await consumer._wait_next_records(1.0)
    assert records == fetched
