"""The worker's per-batch metrics: what a scored batch and a published batch add to
:class:`credit_scorer.metrics.ScorerMetrics` (the champion's; the challenger's are
:mod:`stream_app.shadow`'s), in bulk (:func:`stream_app.metric_batch.observe_many`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from credit_scorer.metrics import ScorerMetrics
from kafka_io.records import InboundRecord
from scoring.features import CachedFeatures
from scoring.results import BatchScore
from stream_app.metric_batch import observe_many


def observe_scoring(
    m: ScorerMetrics, version: str, cached: CachedFeatures, features_s: float, score: BatchScore
) -> int:
    n = len(score.results)
    found = int(np.count_nonzero(cached.found))
    m.feature_lookups.inc(n)
    if n - found:
        m.feature_misses.inc(n - found)
    stage = m.stage_seconds
    stage.labels("features").observe(features_s)
    stage.labels("inference").observe(score.inference_s)
    stage.labels("reasons").observe(score.reasons_s)
    labels = Counter(r.decision for r in score.results)
    for label, count in labels.items():
        m.decisions.labels(label, version, "champion").inc(count)
    refusals = labels.get("REFUS", 0)
    if refusals or "REFER" in labels:  # a rule fires only on a REFUS or a REFER
        for rule, count in Counter(h.code for r in score.results for h in r.rules).items():
            m.rule_hits.labels(rule).inc(count)
    probs = (
        score.probabilities
        if score.probabilities is not None
        else np.array([r.probability for r in score.results])
    )
    observe_many(m.default_probability.labels(version, "champion"), probs)
    return refusals


def observe_batch(
    m: ScorerMetrics,
    records: Sequence[InboundRecord],
    event_ts: list[float],
    consumed_at: float,
    produced_at: float,
    produce_s: float,
    kinds: dict[str, int],
    n_decisions: int,
) -> None:
    m.batch_size.observe(len(records))
    m.stage_seconds.labels("produce").observe(produce_s)
    if n_decisions:  # each decision of the batch waited the same consumed → acknowledged time
        observe_many(m.worker_latency, np.full(n_decisions, max(0.0, produced_at - consumed_at)))
    if event_ts:
        ts = np.asarray(event_ts)
        observe_many(m.stage_seconds.labels("queue"), np.maximum(0.0, consumed_at - ts))
        observe_many(m.stage_seconds.labels("total"), np.maximum(0.0, produced_at - ts))
    for kind, count in kinds.items():
        m.dead_letters.labels(kind).inc(count)
