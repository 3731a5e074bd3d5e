"""Prometheus recording and alerting rules, generated (``dashboards/prometheus/credit_scorer.rules.yml``).

Every alert is written as ``<signal> <comparison> <threshold>`` (possibly several joined by ``and`` /
``or``), where the signal is a recording rule or a plain series. The integration tests rely on that
shape: an alert that is normally silent is checked by evaluating its signals, which must return data.
"""

from __future__ import annotations

from typing import Any

from dashboards import slo

LATENCY_P99 = "credit_scorer:event_latency_seconds:p99_5m"
APPROVAL_RATE = "credit_scorer:approval_rate:ratio_10m"
DEAD_LETTER_RATIO = "credit_scorer:dead_letter_ratio:ratio_5m"
CONSUMER_LAG = "credit_scorer:consumer_lag:sum"
PSI_BY_FEATURE = "credit_scorer:psi:max"
# not a recording rule: the alert must see this scrape's value (rule groups evaluate concurrently)
STALLED = "max by (instance) (credit_scorer_stalled_seconds)"

# the champion's decisions: the ones published and acted on (a challenger's shadow decisions page no one)
_CHAMPION = f'role="{slo.CHAMPION}"'
_DECISIONS_10M = f"sum by (model_version) (rate(credit_scorer_decisions_total{{{_CHAMPION}}}[10m]))"
_DEAD_LETTERS_5M = "(sum(rate(credit_scorer_dead_letters_total[5m])) or vector(0))"


def recording_rules() -> list[dict[str, str]]:
    return [
        {
            "record": LATENCY_P99,
            "expr": (
                "histogram_quantile(0.99, sum by (le) "
                '(rate(credit_scorer_stage_seconds_bucket{stage="total"}[5m])))'
            ),
        },
        {
            "record": APPROVAL_RATE,
            # a version with no ACCORD in the window has rate 0, not a missing series
            "expr": (
                "(sum by (model_version) "
                f'(rate(credit_scorer_decisions_total{{decision="{slo.APPROVED}", {_CHAMPION}}}[10m]))'
                f" or 0 * {_DECISIONS_10M}) / {_DECISIONS_10M}"
            ),
        },
        {
            "record": DEAD_LETTER_RATIO,
            "expr": (
                f"{_DEAD_LETTERS_5M} / (sum(rate(credit_scorer_decisions_total{{{_CHAMPION}}}[5m])) "
                f"+ {_DEAD_LETTERS_5M})"
            ),
        },
        {
            # a partition is reported by the worker that owns it; max() ignores a stale copy
            "record": CONSUMER_LAG,
            "expr": "sum by (topic) (max by (topic, partition) (credit_scorer_consumer_lag))",
        },
        {
            "record": PSI_BY_FEATURE,
            "expr": "max by (feature) (credit_scorer_psi)",
        },
    ]


def alerting_rules() -> list[dict[str, Any]]:
    return [
        {
            "alert": "ScoringLatencyP99AboveSLO",
            "expr": f"{LATENCY_P99} > {slo.LATENCY_SLO_SECONDS}",
            "for": "5m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "Event → decision p99 latency above the 15 ms SLO",
                "description": "p99 over 5 minutes is {{ $value | humanizeDuration }} "
                f"(SLO {slo.LATENCY_SLO_SECONDS * 1000:g} ms).",
            },
        },
        {
            "alert": "ApprovalRateOutOfBand",
            "expr": f"{APPROVAL_RATE} < {slo.APPROVAL_RATE_MIN} or {APPROVAL_RATE} > {slo.APPROVAL_RATE_MAX}",
            "for": "15m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "Approval rate of model {{ $labels.model_version }} outside its band",
                "description": "Approval rate over 10 minutes is {{ $value | humanizePercentage }} "
                f"(band {slo.APPROVAL_RATE_MIN:.0%}–{slo.APPROVAL_RATE_MAX:.0%}).",
            },
        },
        {
            "alert": "DeadLetterRateHigh",
            "expr": f"{DEAD_LETTER_RATIO} > {slo.DEAD_LETTER_RATIO_MAX}",
            "for": "5m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "Too many events sent to the dead-letter topic",
                "description": "{{ $value | humanizePercentage }} of events dead-lettered over 5 minutes "
                f"(limit {slo.DEAD_LETTER_RATIO_MAX:.0%}).",
            },
        },
        {
            "alert": "ConsumerLagGrowing",
            "expr": f"deriv({CONSUMER_LAG}[10m]) > 0 and {CONSUMER_LAG} > {slo.CONSUMER_LAG_MIN_RECORDS}",
            "for": "10m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "Consumer lag on {{ $labels.topic }} keeps growing",
                "description": "The workers fall behind: lag is growing for 10 minutes and above "
                f"{slo.CONSUMER_LAG_MIN_RECORDS} records.",
            },
        },
        {
            "alert": "ScorerStalled",
            "expr": f"{STALLED} > {slo.STALL_SECONDS}",
            "for": "1m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "Worker {{ $labels.instance }} decides nothing while records wait",
                "description": "Records are pending on its partitions and none was decided or "
                "dead-lettered for {{ $value | humanizeDuration }}: see its log (fetches starved, "
                "a dependency down) and credit_scorer_fetch_recoveries_total.",
            },
        },
        {
            "alert": "DriftPSIHigh",
            "expr": f"{PSI_BY_FEATURE} > {slo.DRIFT_PSI_ALERT}",
            "for": "15m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "Significant drift of {{ $labels.feature }} (PSI > 0.25)",
                "description": "PSI of {{ $labels.feature }} against the training reference is "
                '{{ $value | printf "%.3f" }}: the live population no longer matches training.',
            },
        },
        {
            "alert": "DriftPSIModerate",
            "expr": f"{PSI_BY_FEATURE} > {slo.DRIFT_PSI_WARN}",
            "for": "1h",
            "labels": {"severity": "info"},
            "annotations": {
                "summary": "Moderate drift of {{ $labels.feature }} (PSI > 0.1)",
                "description": 'PSI of {{ $labels.feature }} is {{ $value | printf "%.3f" }}.',
            },
        },
        {
            "alert": "DisparateImpactBelowFourFifths",
            "expr": f"min by (segment) (credit_scorer_disparate_impact_ratio) < {slo.DISPARATE_IMPACT_MIN}",
            "for": "30m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "Approval rates by {{ $labels.segment }} differ beyond the four-fifths rule",
                "description": "Lowest / highest approval rate among the {{ $labels.segment }} groups is "
                '{{ $value | printf "%.2f" }} (< 0.8): a legal and a model risk; see the fairness panels.',
            },
        },
        {
            "alert": "ScorerInstanceDown",
            "expr": f'up{{job=~"{slo.WORKER_JOB}|{slo.API_JOB}"}} == 0',
            "for": "1m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "{{ $labels.job }} instance {{ $labels.instance }} is down",
                "description": "Prometheus cannot scrape {{ $labels.instance }} for 1 minute.",
            },
        },
    ]


def rules_document() -> dict[str, Any]:
    return {
        "groups": [
            {"name": "credit-scorer-recording", "rules": recording_rules()},
            {"name": "credit-scorer-alerts", "rules": alerting_rules()},
        ]
    }
