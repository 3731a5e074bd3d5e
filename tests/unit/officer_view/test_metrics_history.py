"""The monitoring page's arithmetic on Prometheus text pages: rates, approval rate, percentiles."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from credit_scorer.metrics import ScorerMetrics
from officer_view.metrics_history import MetricsHistory, Snapshot, quantile, score_distribution


def page(metrics: ScorerMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    buckets = [(0.01, 50.0), (0.1, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.01)
    assert quantile(buckets, 0.7) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None


def test_rates_and_percentiles_come_from_the_interval_between_two_scrapes() -> None:
    m = ScorerMetrics(CollectorRegistry())
    history = MetricsHistory()
    m.decisions.labels("ACCORD", "v1", "champion").inc(100)
    m.stage_seconds.labels("total").observe(5.0)  # before the first scrape: not in the interval
    assert history.observe(Snapshot.parse([page(m)], at=10.0))["decisions_per_s"] is None
    m.decisions.labels("ACCORD", "v1", "champion").inc(30)
    m.decisions.labels("REFUS", "v1", "champion").inc(10)
    for _ in range(40):
        m.stage_seconds.labels("total").observe(0.004)
    m.default_probability.labels("v1", "champion").observe(0.12)
    m.decisions.labels("REFUS", "v2", "challenger").inc(40)  # shadow decisions: neither rate nor share
    m.default_probability.labels("v2", "challenger").observe(0.9)
    m.consumer_lag.labels("apps", "0").set(7)
    point = history.observe(Snapshot.parse([page(m)], at=12.0))
    assert point["decisions_per_s"] == pytest.approx(20.0)
    assert point["approval_rate"] == pytest.approx(0.75)
    assert point["worker_p99_ms"] is not None and 2.5 < point["worker_p99_ms"] <= 5.0
    assert point["worker_lag"] == 7 and len(history.points) == 1
    dist = dict(score_distribution(Snapshot.parse([page(m)])))
    assert dist["0.10-0.15"] == 1 and sum(dist.values()) == 1
