"""decide() with a model trained and saved by the real training code (tests.fixtures.models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import polars as pl

from feature_loader.feature_schema import FeatureSchema
from schemas.codec import decode_decision, encode_decision, parse_application
from scoring.decide import decide
from scoring.decision import StageTimings, build_decision
from scoring.features import CachedFeatures
from scoring.model import load_model
from scoring.prepared import PreparedModel
from tests.fixtures.models import MakeFeatureDir


def test_online_scores_equal_the_offline_model_bit_for_bit(
    small_model_dir: Path, make_feature_dir: MakeFeatureDir
) -> None:
    loaded = load_model(small_model_dir)
    model = PreparedModel(loaded)
    assert model.forest is not None, model.forest_fallback
    schema: FeatureSchema = model.schema
    table = pl.read_parquet(make_feature_dir(n_rows=300, seed=5) / "features.parquet")
    offline = table.select(schema.names).to_numpy().astype(np.float32)
    expected = loaded.predict(offline)  # the offline path: feature table → model

    # the cache holds each client's vector with event fields of another (older) application
    rng = np.random.default_rng(0)
    cached = offline.copy()
    for f in schema.event_fields:
        j = schema.index[f.name]
        cached[:, j] = cached[rng.permutation(len(cached)), j]
    events = [
        parse_application(
            orjson.dumps(
                {
                    "sk_id_curr": sk,
                    **{f.name: f.decode(float(row[schema.index[f.name]])) for f in schema.event_fields},
                }
            ),
            64 * 1024,
            record_time=1_700_000_000.0,
        )
        for sk, row in zip(table["SK_ID_CURR"].to_list(), offline, strict=True)
    ]  # the application events, as JSON on the wire
    found = np.ones(len(events), dtype=bool)
    batch = decide(model, events, CachedFeatures(cached, found, schema.version, 1_700_000_000.0)).score

    np.testing.assert_array_equal(batch.matrix, offline)
    assert np.array([r.probability for r in batch.results]).tobytes() == expected.tobytes()
    refused = [r for r in batch.results if r.decision == "REFUS"]
    assert refused and all(r.reasons for r in refused)
    assert all(
        r.model_version == model.model_version and r.threshold == model.threshold for r in batch.results
    )

    # reasons are exactly additive on the real model too
    explainer = model.explainer
    contrib = explainer.contributions(model.booster, offline)
    raw = model.booster.predict(offline, raw_score=True)
    np.testing.assert_allclose(explainer.expected_value + contrib.sum(axis=1), raw, atol=1e-9, rtol=0)

    # and the published record carries the same numbers
    timings = StageTimings(consumed_at=1_700_000_000.01, features_s=0.001, inference_s=batch.inference_s,
                           reasons_s=batch.reasons_s)  # fmt: skip
    d = decode_decision(encode_decision(build_decision(events[0], batch.results[0], timings)))
    assert d.probability_default == expected[0] and d.model_version == model.model_version
    assert d.score == 1.0 - expected[0]  # the original API's credit score: P(approval)
    assert d.feature_version == schema.version
