"""Live fairness adapter: folds every scored batch into approval rates by segment (scoring.fairness).

Exports, with bounded labels (segment and group are fixed sets, :mod:`scoring.fairness`):
``credit_scorer_segment_decisions_total{segment, group, decision}`` (PromQL windows over it),
``credit_scorer_segment_approval_rate{segment, group}`` and
``credit_scorer_segment_default_probability_mean{segment, group}`` since the worker started, and
``credit_scorer_disparate_impact_ratio{segment}`` (lowest / highest approval rate among groups with
``fairness.min_group_decisions`` decisions; the alert fires below 0.8). Gauges are recomputed at most
every ``publish_every_s``. A failure here is logged and never reaches the scoring path.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.fairness import FairnessTally, segments_for
from scoring.policy import ACCORD, LABELS

_CODE = {label: k for k, label in enumerate(LABELS)}  # decision → its index in LABELS

if TYPE_CHECKING:
    from credit_scorer.metrics import ScorerMetrics
    from credit_scorer.settings import FairnessSettings
    from scoring.results import BatchScore


class FairnessObserver:
    """Per-batch observer: ``observer(batch)`` after each scored micro-batch."""

    def __init__(self, tally: FairnessTally, metrics: ScorerMetrics, settings: FairnessSettings) -> None:
        self.tally = tally
        self.metrics = metrics
        self.settings = settings
        self._published = 0.0
        self._children: dict[tuple[str, str, str], Any] = {}  # the counter's children, by labels

    def __call__(self, batch: BatchScore) -> None:
        results = batch.results
        kind = np.fromiter((_CODE[r.decision] for r in results), np.int64, len(results))
        probs = (
            batch.probabilities
            if batch.probabilities is not None
            else np.array([r.probability for r in results])
        )
        codes = [s.codes(batch.matrix) for s in self.tally.segments]
        for s, group in zip(self.tally.segments, codes, strict=True):
            # one count per (decision, group) cell: a batch touches a few of the bounded label sets
            n = len(s.groups)
            counts = np.bincount(kind * n + group, minlength=len(LABELS) * n)
            for cell in np.flatnonzero(counts).tolist():
                self._counter(s.name, s.groups[cell % n], LABELS[cell // n]).inc(int(counts[cell]))
        self.tally.fold_codes(codes, kind == _CODE[ACCORD], np.asarray(probs, dtype=np.float64))
        now = time.monotonic()
        if now - self._published >= self.settings.publish_every_s:
            self._published = now
            self.publish()

    def _counter(self, segment: str, group: str, decision: str) -> Any:
        key = (segment, group, decision)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.metrics.segment_decisions.labels(*key)
        return child

    def publish(self) -> None:
        m = self.metrics
        for s in self.tally.segments:
            rates, means = self.tally.approval_rate(s.name), self.tally.mean_probability(s.name)
            for g, group in enumerate(s.groups):
                if self.tally.decisions[s.name][g]:
                    m.segment_approval_rate.labels(s.name, group).set(float(rates[g]))
                    m.segment_mean_pd.labels(s.name, group).set(float(means[g]))
            ratio = self.tally.disparate_impact(s.name, self.settings.min_group_decisions)
            if ratio is not None:
                m.disparate_impact.labels(s.name).set(ratio)


def fairness_observers(
    settings: FairnessSettings, model: Any, metrics: ScorerMetrics
) -> list[FairnessObserver]:
    """The worker's fairness observer for ``model``'s schema (none when disabled or no segment applies)."""
    segments = segments_for(model.schema) if settings.enabled else []
    return [FairnessObserver(FairnessTally(segments), metrics, settings)] if segments else []
