"""The worker's challenger arm: score the champion's batch in the shadow, encode, count.

The pipeline (:mod:`stream_app.engine`) holds one :class:`ShadowArm` when the worker may serve a
challenger (:mod:`credit_scorer.challenger_watch`). Per batch, on the scorer thread right after the
champion, :meth:`ShadowArm.decide` runs :func:`scoring.challenger.shadow_decide` on the champion's
assembled matrix; the loop then encodes the challenger's decisions (:meth:`records`: the same Decision
contract, stamped with the challenger's model version) for the shadow topic, published with the
batch's decisions and acknowledged before its offsets are committed, never on the review topic.

Why a shadow topic rather than a ``challenger`` field in each decision: the consumers of the decisions
topic (decision store, officer view, the lender's systems) see no change and cannot act on a shadow
decision by mistake; the contract stays version 2; shadow volume is retained and read apart (it can
be switched off without touching the decisions topic); the two are joined by ``application_id``.

A failure of the challenger (a bug, a model that cannot score a row) is logged and counted
(``credit_scorer_challenger_swaps_total{result="failed"}``): the batch goes on with the champion's
decisions alone — the champion's decisions never wait on, or depend on, the challenger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from credit_scorer.metrics import ScorerMetrics
from kafka_io.records import Record
from schemas.events import LoanApplication
from scoring.challenger import Shadow, shadow_decide
from scoring.decide import DecideOptions
from scoring.decision import StageTimings, decision_batch_bytes
from scoring.features import CachedFeatures
from scoring.prepared import PreparedModel
from scoring.results import BatchScore
from stream_app.metric_batch import observe_many

if TYPE_CHECKING:
    from credit_scorer.challenger_watch import ChallengerWatcher

log = logging.getLogger(__name__)


class ShadowArm:
    """The challenger of one pipeline: its model (or None), the watcher moving it, its metrics."""

    def __init__(
        self,
        metrics: ScorerMetrics,
        feature_version: str,
        model: PreparedModel | None = None,
        registry_version: str = "",
        watcher: ChallengerWatcher | None = None,
    ) -> None:
        self.metrics = metrics
        self.feature_version = feature_version  # the live cache's: a challenger must read it
        self.model: PreparedModel | None = None
        self.registry_version = ""
        self.watcher = watcher
        if model is not None:
            self.swap(model, registry_version)
        else:
            metrics.set_challenger("", "")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.watcher is not None:
            self.watcher.start(lambda m, v: loop.call_soon_threadsafe(self.swap, m, v))

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def swap(self, model: PreparedModel | None, registry_version: str = "") -> bool:
        """Score ``model`` in the shadow from the next batch (None: no challenger). Refused (False) when
        it reads another feature schema than the live cache."""
        if model is not None and model.feature_version != self.feature_version:
            log.warning(
                "challenger %s needs features %s, the cache serves %s: not served",
                model.model_version,
                model.feature_version,
                self.feature_version,
            )
            self.metrics.challenger_swaps.labels("schema_mismatch").inc()
            return False
        self.model, self.registry_version = model, registry_version if model is not None else ""
        if model is None:
            self.metrics.set_challenger("", "")
        else:
            self.metrics.set_challenger(model.model_version, model.feature_version, registry_version)
        return True

    def decide(
        self,
        challenger: PreparedModel,
        champion: BatchScore,
        features: CachedFeatures,
        options: DecideOptions,
    ) -> Shadow | None:
        """The challenger's decisions of the champion's rows (scorer thread); None when it failed."""
        try:
            return shadow_decide(challenger, champion, features, options=options)
        except Exception:  # the champion's batch must go on whatever the challenger does
            log.exception(
                "challenger %s failed on a batch: no shadow decisions for it", challenger.model_version
            )
            self.metrics.challenger_swaps.labels("failed").inc()
            return None

    def records(self, apps: Sequence[LoanApplication], shadow: Shadow, timings: StageTimings) -> list[Record]:
        """The shadow topic's records (key = application id, as on the decisions topic)."""
        score = shadow.score
        own = StageTimings(timings.consumed_at, timings.features_s, score.inference_s, score.reasons_s)
        encoded = decision_batch_bytes(apps, score.results, own)
        return [(app.key.encode(), value) for app, value in zip(apps, encoded, strict=True)]

    def observe(self, version: str, shadow: Shadow) -> None:
        """Decisions and scores under the challenger's version (role challenger), and the agreement."""
        m = self.metrics
        for (champion, challenger), count in shadow.pairs.items():
            m.challenger_decisions.labels(champion, challenger).inc(count)
        by_label: dict[str, int] = {}
        for r in shadow.score.results:
            by_label[r.decision] = by_label.get(r.decision, 0) + 1
        for label, count in by_label.items():
            m.decisions.labels(label, version, "challenger").inc(count)
        if shadow.score.probabilities is not None:
            observe_many(m.default_probability.labels(version, "challenger"), shadow.score.probabilities)
