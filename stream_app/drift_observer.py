"""Live drift adapter: folds every scored batch into the drift histograms and exports the PSI.

Called by the worker once per micro-batch with the :class:`scoring.results.BatchScore`; updates
``credit_scorer_psi{feature}`` (``feature="score"`` for the probability of default) and
``credit_scorer_drift_observations_total``. The pure work is in :mod:`scoring.drift`.

Cost control: folding a batch is one ``searchsorted`` + ``bincount`` per monitored column; the PSI
itself is recomputed at most every ``publish_every_s`` seconds (a scrape every few seconds cannot see
more often anyway). A failure here is logged and never propagates into the scoring path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.drift import SCORE, DriftMonitor
from scoring.exceptions import DriftReferenceError

if TYPE_CHECKING:
    from credit_scorer.metrics import ScorerMetrics
    from credit_scorer.settings import DriftSettings
    from scoring.model_card import ModelCard
    from scoring.results import BatchScore

log = logging.getLogger(__name__)

DEFAULT_PUBLISH_EVERY_S = 1.0


class DriftObserver:
    """Per-batch observer: ``observer(batch)`` after each scored micro-batch."""

    def __init__(
        self,
        monitor: DriftMonitor,
        columns: Mapping[str, int],
        metrics: ScorerMetrics,
        *,
        publish_every_s: float = DEFAULT_PUBLISH_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unknown = sorted(set(monitor.feature_names) - set(columns))
        if unknown:
            raise ValueError(f"drift reference names features absent from the model's schema: {unknown}")
        self.monitor = monitor
        names = monitor.names
        self._width = len(names)
        self._score_pos = names.index(SCORE) if SCORE in names else None
        self._feature_pos = [i for i, name in enumerate(names) if name != SCORE]
        self._feature_cols = np.array([int(columns[n]) for n in names if n != SCORE], dtype=np.intp)
        self._metrics = metrics
        self._gauges: dict[str, Any] = {}  # created at first publish: no PSI series before min_events
        self._publish_every_s = publish_every_s
        self._clock = clock
        self._last_publish = float("-inf")
        self._failures = 0

    @classmethod
    def for_card(
        cls,
        card: ModelCard,
        columns: Mapping[str, int],
        metrics: ScorerMetrics,
        *,
        half_life_events: float,
        min_events: float,
        publish_every_s: float = DEFAULT_PUBLISH_EVERY_S,
    ) -> DriftObserver | None:
        """Observer for a model's card and schema index (``model.schema.index``); None without reference."""
        if card.reference is None:
            log.warning("model %s has no drift reference: PSI not exported", card.model_version)
            return None
        monitor = DriftMonitor.from_reference(
            card.reference, half_life_events=half_life_events, min_events=min_events
        )
        return cls(monitor, columns, metrics, publish_every_s=publish_every_s)

    def __call__(self, batch: BatchScore) -> None:
        try:
            self.observe(batch)
        except Exception:  # drift is monitoring: it must never fail a batch
            self._failures += 1
            if self._failures == 1 or self._failures % 1000 == 0:
                log.exception("drift observer failed (%d failures so far)", self._failures)

    def observe(self, batch: BatchScore) -> None:
        """Fold the batch in, then refresh the gauges if the last publish is old enough."""
        if not self.fold(batch):
            return
        now = self._clock()
        if now - self._last_publish >= self._publish_every_s:
            self.publish()
            self._last_publish = now

    def fold(self, batch: BatchScore) -> int:
        """Fold the batch's probabilities and monitored columns into the histograms; returns its size."""
        n = len(batch.results)
        if n == 0:
            return 0
        probabilities: Any = batch.probabilities
        if probabilities is None:
            probabilities = np.fromiter((r.probability for r in batch.results), dtype=np.float64, count=n)
        columns = np.empty((self._width, n), dtype=np.float64)
        if self._score_pos is not None:
            columns[self._score_pos] = probabilities
        columns[self._feature_pos] = batch.matrix.T[self._feature_cols]
        self.monitor.observe_columns(columns)
        self._metrics.drift_observations.inc(n)
        return n

    def publish(self) -> dict[str, float]:
        """Set the PSI gauges from the current histograms; returns the values exported."""
        values = self.monitor.psi()
        for name, value in values.items():
            gauge = self._gauges.get(name)
            if gauge is None:
                gauge = self._gauges[name] = self._metrics.psi.labels(feature=name)
            gauge.set(value)
        return values


def drift_observers(settings: DriftSettings, model: Any, metrics: ScorerMetrics) -> list[DriftObserver]:
    """The worker's drift observer for ``model`` (a :class:`scoring.prepared.PreparedModel`), or none when
    disabled, when the model card has no reference, or when the reference is unusable (logged)."""
    card = getattr(model, "card", None)
    if not settings.enabled or card is None:
        return []
    try:
        observer = DriftObserver.for_card(
            card,
            model.schema.index,
            metrics,
            half_life_events=settings.half_life_events,
            min_events=settings.min_events,
            publish_every_s=settings.publish_every_s,
        )
    except (DriftReferenceError, ValueError) as exc:
        log.error("drift monitoring disabled for model %s: %s", card.model_version, exc)
        return []
    return [] if observer is None else [observer]
