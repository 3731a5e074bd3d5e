"""Unit tests of the drift observer: batches in, PSI gauges and observation counter out."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import DriftSettings
from scoring.drift import DriftMonitor
from scoring.model_card import ModelCard, TrainingData
from scoring.results import BatchScore, ScoreResult
from stream_app.drift_observer import DriftObserver, drift_observers

REFERENCE = {
    "score": {"edges": [0.5], "proportions": [0.5, 0.5], "missing": 0.0},
    "features": {"AMT_CREDIT": {"edges": [100.0], "proportions": [0.5, 0.5], "missing": 0.0}},
}
COLUMNS = {"AMT_INCOME_TOTAL": 0, "AMT_CREDIT": 1}


def _batch(probabilities: list[float], amounts: list[float], *, with_array: bool = True) -> BatchScore:
    n = len(probabilities)
    matrix = np.column_stack([np.full(n, 1.0), np.asarray(amounts)]).astype(np.float32)
    results = [
        ScoreResult(i, p, "ACCORD", 0.5, "v1", "f1", True, None, ()) for i, p in enumerate(probabilities)
    ]
    return BatchScore(results, 0.0, 0.0, matrix, np.asarray(probabilities) if with_array else None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sample(metrics: ScorerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _observer(min_events: float = 10, clock: FakeClock | None = None) -> tuple[DriftObserver, ScorerMetrics]:
    metrics = ScorerMetrics(CollectorRegistry())
    monitor = DriftMonitor.from_reference(REFERENCE, half_life_events=1e9, min_events=min_events)
    return DriftObserver(monitor, COLUMNS, metrics, publish_every_s=1.0, clock=clock or FakeClock()), metrics


def test_no_psi_series_before_min_events_then_the_shift_is_exported() -> None:
    observer, metrics = _observer(min_events=100)
    observer(_batch([0.1] * 50, [50.0] * 50))
    assert _sample(metrics, "credit_scorer_psi", feature="score") is None
    assert _sample(metrics, "credit_scorer_drift_observations_total") == 50
    observer.publish()
    # 100 events: 80 % below both medians, 20 % above → the hand-computed PSI of (0.8, 0.2) vs (0.5, 0.5)
    observer(_batch([0.1] * 30 + [0.9] * 20, [50.0] * 30 + [500.0] * 20))
    observer.publish()
    expected = 0.3 * math.log(1.6) + 0.3 * math.log(2.5)
    assert _sample(metrics, "credit_scorer_psi", feature="score") == pytest.approx(expected, rel=1e-6)
    assert _sample(metrics, "credit_scorer_psi", feature="AMT_CREDIT") == pytest.approx(expected, rel=1e-6)
    assert _sample(metrics, "credit_scorer_drift_observations_total") == 100


def test_probabilities_fall_back_to_the_results_when_the_array_is_absent() -> None:
    observer, metrics = _observer(min_events=4)
    observer(_batch([0.9, 0.9, 0.9, 0.9], [500.0] * 4, with_array=False))
    assert observer.publish()["score"] == pytest.approx(observer.publish()["AMT_CREDIT"])
    assert _sample(metrics, "credit_scorer_psi", feature="score") > 0.25  # type: ignore[operator]


def test_gauges_are_refreshed_at_most_every_publish_interval() -> None:
    clock = FakeClock()
    observer, metrics = _observer(min_events=1, clock=clock)
    observer(_batch([0.1] * 10, [50.0] * 10))
    first = _sample(metrics, "credit_scorer_psi", feature="score")
    observer(_batch([0.9] * 10, [500.0] * 10))  # same instant: folded, not yet published
    assert _sample(metrics, "credit_scorer_psi", feature="score") == first
    clock.now = 1.5
    observer(_batch([0.9] * 10, [500.0] * 10))
    assert _sample(metrics, "credit_scorer_psi", feature="score") != first


def test_empty_batch_is_ignored() -> None:
    observer, metrics = _observer()
    observer(_batch([], []))
    assert _sample(metrics, "credit_scorer_drift_observations_total") == 0


def test_a_failing_batch_is_logged_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    observer, metrics = _observer()
    bad = BatchScore(_batch([0.1], [1.0]).results, 0.0, 0.0, np.zeros((1, 1), dtype=np.float32), None)
    observer(bad)  # column 1 does not exist: IndexError inside, swallowed
    assert "drift observer failed" in caplog.text
    observer(_batch([0.1] * 3, [1.0] * 3))  # and the next batch still counts
    assert _sample(metrics, "credit_scorer_drift_observations_total") == 3


def test_reference_feature_missing_from_the_schema_is_rejected() -> None:
    metrics = ScorerMetrics(CollectorRegistry())
    monitor = DriftMonitor.from_reference(REFERENCE)
    with pytest.raises(ValueError, match=r"absent from the model's schema: \['AMT_CREDIT'\]"):
        DriftObserver(monitor, {"OTHER": 0}, metrics)


def _card(reference: dict | None) -> ModelCard:
    return ModelCard(
        model_version="v1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        feature_schema_version="f1",
        features=list(COLUMNS),
        threshold=0.5,
        training_data=TrainingData(fingerprint="x", rows=10, positives=1),
        lightgbm_version="4",
        reference=reference,
    )


def test_observer_from_a_model_card() -> None:
    metrics = ScorerMetrics(CollectorRegistry())
    observer = DriftObserver.for_card(_card(REFERENCE), COLUMNS, metrics, half_life_events=100, min_events=1)
    assert observer is not None and observer.monitor.names == ("score", "AMT_CREDIT")
    assert DriftObserver.for_card(_card(None), COLUMNS, metrics, half_life_events=100, min_events=1) is None


class _Model:
    def __init__(self, card: ModelCard, index: dict[str, int]) -> None:
        self.card = card
        self.schema = type("Schema", (), {"index": index})()


def test_worker_wiring_helper(caplog: pytest.LogCaptureFixture) -> None:
    metrics = ScorerMetrics(CollectorRegistry())
    on, off = DriftSettings(), DriftSettings(enabled=False)
    [observer] = drift_observers(on, _Model(_card(REFERENCE), COLUMNS), metrics)
    assert observer.monitor.names == ("score", "AMT_CREDIT")
    assert drift_observers(off, _Model(_card(REFERENCE), COLUMNS), metrics) == []
    assert drift_observers(on, object(), metrics) == []  # a model without a card
    # a reference naming a feature the schema lacks disables drift with an error, never crashes
    assert drift_observers(on, _Model(_card(REFERENCE), {"AMT_INCOME_TOTAL": 0}), metrics) == []
    assert "drift monitoring disabled for model v1" in caplog.text
