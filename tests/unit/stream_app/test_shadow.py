"""The worker's challenger arm (stream_app.shadow): another schema refused, a failing challenger never
stops the batch, shadow records stamped with the challenger, metrics by role and the agreement pairs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

from credit_scorer.metrics import ScorerMetrics
from feature_loader.feature_schema import FeatureSchema
from schemas.codec import decode_decision, parse_application
from scoring.decide import DecideOptions, decide
from scoring.decision import StageTimings
from scoring.features import CachedFeatures
from scoring.model import load_model
from scoring.prepared import PreparedModel
from stream_app.shadow import ShadowArm
from tests.fixtures.models import default_schema, synthetic_matrix

OPTIONS = DecideOptions("refusals", 4)


def value(metrics: ScorerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_arm_scores_in_the_shadow_refuses_another_schema_and_survives_a_failure(
    small_model_dir: Path, make_model_dir: Callable[..., Path]
) -> None:
    champion = PreparedModel(load_model(small_model_dir))
    challenger = PreparedModel(load_model(make_model_dir(seed=1)))
    narrow = FeatureSchema(fields=tuple(f for f in default_schema().fields if f.name != "BURO_CREDIT_COUNT"))
    other = PreparedModel(load_model(make_model_dir(schema=narrow)))
    metrics = ScorerMetrics()
    arm = ShadowArm(metrics, champion.feature_version)
    assert arm.model is None

    assert arm.swap(other, "3") is False and arm.model is None  # another schema: not served
    assert value(metrics, "credit_scorer_challenger_swaps_total", result="schema_mismatch") == 1
    assert arm.swap(challenger, "2") is True and arm.model is challenger and arm.registry_version == "2"

    schema = champion.schema
    x, _ = synthetic_matrix(schema, 50, seed=5)
    apps = [
        parse_application(
            orjson.dumps(
                {
                    "application_id": f"a-{i}",
                    "sk_id_curr": 500 + i,
                    "event_time": time.time(),
                    **{f.name: f.decode(float(x[i, schema.index[f.name]])) for f in schema.event_fields},
                }
            ),
            100_000,
        )
        for i in range(50)
    ]
    cached = CachedFeatures(x, np.ones(50, bool), schema.version, None)
    decided = decide(champion, apps, cached, options=OPTIONS)

    shadow = arm.decide(challenger, decided.score, decided.features, OPTIONS)
    assert shadow is not None
    records = arm.records(apps, shadow, StageTimings(time.time(), 0.001, 0.002, 0.0))
    assert [k for k, _ in records] == [a.key.encode() for a in apps]
    shadows = [decode_decision(v) for _, v in records]
    assert {d.model_version for d in shadows} == {challenger.model_version}
    assert [d.probability_default for d in shadows] == [r.probability for r in shadow.score.results]

    arm.observe(challenger.model_version, shadow)
    by_role = sum(
        value(
            metrics,
            "credit_scorer_decisions_total",
            decision=d,
            model_version=challenger.model_version,
            role="challenger",
        )
        for d in ("ACCORD", "REFUS", "REFER")
    )
    assert by_role == 50
    assert (
        value(
            metrics,
            "credit_scorer_default_probability_count",
            model_version=challenger.model_version,
            role="challenger",
        )
        == 50
    )
    pairs = [
        value(metrics, "credit_scorer_challenger_decisions_total", champion=a, challenger=b)
        for a in ("ACCORD", "REFUS", "REFER")
        for b in ("ACCORD", "REFUS", "REFER")
    ]
    assert sum(pairs) == 50

    # a challenger that cannot score the batch (here: features of another version) fails alone
    assert arm.decide(other, decided.score, decided.features, OPTIONS) is None
    assert value(metrics, "credit_scorer_challenger_swaps_total", result="failed") == 1

    assert arm.swap(None) is True and arm.model is None and arm.registry_version == ""  # demoted


@pytest.mark.parametrize("version", ["", "7"])
def test_the_challenger_info_follows_the_arm(small_model_dir: Path, version: str) -> None:
    model = PreparedModel(load_model(small_model_dir))
    metrics = ScorerMetrics()
    arm = ShadowArm(metrics, model.feature_version, model, version)
    info = {
        "model_version": model.model_version,
        "feature_version": model.feature_version,
        "registry_version": version,
    }
    assert value(metrics, "credit_scorer_challenger_info", **info) == 1
    arm.swap(None)
    assert (
        value(
            metrics,
            "credit_scorer_challenger_info",
            model_version="",
            feature_version="",
            registry_version="",
        )
        == 1
    )
