"""Every Prometheus metric of the project, in one place.

Naming: ``credit_scorer_<what>_seconds`` for durations, ``..._total`` for counters, ``_info`` for the
model identity. Labels are bounded sets only (stage, decision, reason, model/feature version, topic
partition, feature name of the model's top features) — never an id.

Metrics are created on an explicit registry so tests and several apps in one process do not collide;
processes use :func:`default_metrics`.
"""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Seconds: event→decision targets are single-digit milliseconds, but queueing under overload can reach s.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
PROBABILITY_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))  # 0.05 … 1.0
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000)

STAGES = ("queue", "features", "inference", "reasons", "produce", "total")
# The worker-added time of a batch (records handed over → decisions acknowledged), one observation per
# batch each: parse → features (Redis) → scorer_wait (staged → the scorer thread takes it, behind the
# previous batch) → decide (on the scorer thread; inference and reasons are parts of it) → handback
# (scorer done → the event loop resumes the batch) → encode → produce (publish → every ack).
WORKER_STAGES = ("parse", "features", "scorer_wait", "decide", "handback", "encode", "produce")


class ScorerMetrics:
    """The metric objects of one scorer process (stream worker or API)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.stage_seconds = Histogram(
            "credit_scorer_stage_seconds",
            "Latency of each stage of an event's path (queue = time waiting in the topic; total = "
            "event time to decision produced; the worker's own stages, once per batch: parse, features, "
            "scorer_wait, decide, handback, encode, produce).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.worker_latency = Histogram(
            "credit_scorer_worker_latency_seconds",
            "What the worker itself adds to each decision: records handed over by the consumer → the "
            "decision published and acknowledged by the broker (the broker's own hops are not in it; "
            "stage total = event time → produced includes them).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "credit_scorer_batch_seconds",
            "Wall time to process one micro-batch, fetch to commit.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scored_batches = Counter(
            "credit_scorer_scored_batches_total",
            "Micro-batches scored, by thread: event_loop (at most stream.inline_score_max applications, "
            "no thread hand-off) or scorer (larger: overlapped with staging the next batch).",
            ["thread"],
            registry=r,
        )
        self.batch_size = Histogram(
            "credit_scorer_batch_size",
            "Events per micro-batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "credit_scorer_decisions_total",
            "Decisions made, by outcome, model version and role (champion: published on the decisions "
            "topic; challenger: scored in the shadow, published on the shadow topic).",
            ["decision", "model_version", "role"],
            registry=r,
        )
        self.rule_hits = Counter(
            "credit_scorer_policy_rule_hits_total",
            "Policy rules that fired, by rule code (bounded: the policy file's codes).",
            ["rule"],
            registry=r,
        )
        self.overrides = Counter(
            "credit_scorer_overrides_total",
            "Reviewer verdicts, from the reviewed decision to the final one (REFER -> ACCORD/REFUS).",
            ["from", "to"],
            registry=r,
        )
        for to in ("ACCORD", "REFUS"):  # exported at 0 from the start: a dashboard sees every scorer
            self.overrides.labels("REFER", to)
        self.default_probability = Histogram(
            "credit_scorer_default_probability",
            "Distribution of the predicted probability of default, by model version and role.",
            ["model_version", "role"],
            buckets=PROBABILITY_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "credit_scorer_dead_letters_total",
            "Events sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.feature_lookups = Counter(
            "credit_scorer_feature_lookups_total",
            "Client-feature lookups in the Redis cache.",
            registry=r,
        )
        self.feature_misses = Counter(
            "credit_scorer_feature_cache_misses_total",
            "Lookups of clients absent from the feature cache (scored on application fields alone).",
            registry=r,
        )
        self.retries = Counter(
            "credit_scorer_retries_total",
            "Retries after a transient fault, by dependency.",
            ["dependency"],
            registry=r,
        )
        self.in_flight = Gauge(
            "credit_scorer_in_flight_events",
            "Events fetched from Kafka and not yet committed.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "credit_scorer_consumer_lag",
            "Records behind the end of each assigned partition of the applications topic.",
            ["topic", "partition"],
            registry=r,
        )
        self.fetch_wait = Gauge(
            "credit_scorer_fetch_wait_seconds",
            "Broker long-poll wait of the worker's fetches now (raised when fetches starve).",
            registry=r,
        )
        self.fetch_starved = Gauge(
            "credit_scorer_fetch_starved_seconds",
            "Seconds spent waiting on fetches while records were pending and too few arrived (0 = healthy).",
            registry=r,
        )
        self.stalled = Gauge(
            "credit_scorer_stalled_seconds",
            "Seconds with records pending on the worker's partitions and none decided or dead-lettered "
            "(0 = keeping up or idle; read at scrape time from stream_app.stall.ProgressWatch).",
            registry=r,
        )
        self.fetch_recoveries = Counter(
            "credit_scorer_fetch_recoveries_total",
            "Recoveries from a starved consumer, by action (raise_wait, restart_fetch, relax_wait).",
            ["action"],
            registry=r,
        )
        self.model_info = Info(
            "credit_scorer_model",
            "Identity of the model in use (exported as credit_scorer_model_info).",
            registry=r,
        )
        self.model_swaps = Counter(
            "credit_scorer_model_swaps_total",
            "Registry versions met by the model watch, by result (swapped, schema_mismatch, refused, "
            "registry_error).",
            ["result"],
            registry=r,
        )
        self.challenger_decisions = Counter(
            "credit_scorer_challenger_decisions_total",
            "Applications decided by the champion and, in the shadow, by the challenger, by the pair of "
            "outcomes (3 x 3 series; agreement = the diagonal's share).",
            ["champion", "challenger"],
            registry=r,
        )
        self.challenger_swaps = Counter(
            "credit_scorer_challenger_swaps_total",
            "Challenger versions met by the worker, by result (served, removed, schema_mismatch, refused, "
            "registry_error), and batches it failed to score (failed: the champion's went on).",
            ["result"],
            registry=r,
        )
        self.challenger_info = Info(
            "credit_scorer_challenger",
            "The challenger scored in the shadow (model_version empty: none).",
            registry=r,
        )
        self.segment_decisions = Counter(
            "credit_scorer_segment_decisions_total",
            "Decisions by segment (gender, age_band, contract_type, income_band), group and outcome.",
            ["segment", "group", "decision"],
            registry=r,
        )
        self.segment_approval_rate = Gauge(
            "credit_scorer_segment_approval_rate",
            "Share of ACCORD decisions by segment and group since the worker started.",
            ["segment", "group"],
            registry=r,
        )
        self.segment_mean_pd = Gauge(
            "credit_scorer_segment_default_probability_mean",
            "Mean predicted probability of default by segment and group since the worker started.",
            ["segment", "group"],
            registry=r,
        )
        self.disparate_impact = Gauge(
            "credit_scorer_disparate_impact_ratio",
            "Lowest / highest approval rate among a segment's groups (enough decisions each); < 0.8 flags.",
            ["segment"],
            registry=r,
        )
        self.psi = Gauge(
            "credit_scorer_psi",
            "Population stability index of the live stream against the training reference, per feature "
            "(feature='score' for the predicted probability).",
            ["feature"],
            registry=r,
        )
        self.drift_observations = Counter(
            "credit_scorer_drift_observations_total",
            "Events folded into the live drift histograms.",
            registry=r,
        )
        self.api_request_seconds = Histogram(
            "credit_scorer_api_request_seconds",
            "REST API request latency by route and status class.",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def set_model(
        self, model_version: str, feature_version: str, threshold: float, registry_version: str = ""
    ) -> None:
        """The model in use; ``registry_version`` is empty for a model served from a folder."""
        self.model_info.info(
            {
                "model_version": model_version,
                "feature_version": feature_version,
                "threshold": f"{threshold:.6f}",
                "registry_version": registry_version,
            }
        )

    def set_challenger(self, model_version: str, feature_version: str, registry_version: str = "") -> None:
        """The challenger in use (all empty: none); its 9 agreement series start at 0 when there is one."""
        self.challenger_info.info(
            {
                "model_version": model_version,
                "feature_version": feature_version,
                "registry_version": registry_version,
            }
        )
        if model_version:
            for champion in DECISION_LABELS:
                for challenger in DECISION_LABELS:
                    self.challenger_decisions.labels(champion, challenger)


ROLES = ("champion", "challenger")  # the role label: published decisions, shadow decisions
DECISION_LABELS = ("ACCORD", "REFUS", "REFER")  # scoring.policy.LABELS (metrics import nothing of scoring)


@lru_cache(maxsize=1)
def default_metrics() -> ScorerMetrics:
    """A process's own metrics, with the process collectors (``process_resident_memory_bytes`` and CPU,
    ``python_gc_collections_total`` by generation: the worker's memory and GC pauses, next to its
    latency)."""
    from prometheus_client import GCCollector, ProcessCollector

    metrics = ScorerMetrics()
    ProcessCollector(registry=metrics.registry)
    GCCollector(registry=metrics.registry)
    return metrics


class StoreMetrics:
    """The metric objects of the decision-store sink (``credit-scorer store sink``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.stored = Counter(
            "credit_scorer_store_records_total",
            "Records of the decisions topic handled by the store sink, by outcome (stored, duplicate, "
            "replay, rejected = undecodable, counted and skipped).",
            ["outcome"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "credit_scorer_store_batch_seconds",
            "Wall time of one store transaction (a micro-batch of decisions).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "credit_scorer_retries_total",
            "Retries after a transient fault, by dependency.",
            ["dependency"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "credit_scorer_store_consumer_lag",
            "Records of the decisions topic not yet stored, per assigned partition.",
            ["partition"],
            registry=r,
        )
