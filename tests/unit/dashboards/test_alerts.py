"""Every alert fires when its condition holds for its ``for:`` duration, and not before or otherwise.

Runs ``promtool test rules`` (Debian's promtool, offline) on synthetic series against the generated
rules file: the live-Prometheus test sees the alerts silent on a healthy stream; this one proves the
thresholds, durations, labels and annotation templates when they are crossed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import build, slo

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="Debian's promtool is not installed (make setup)")

JOB = slo.WORKER_JOB
W = f'instance="w1:9464", job="{JOB}"'
W2 = f'instance="w2:9464", job="{JOB}"'


def _alert(labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}


def _case(series: dict[str, str], checks: list[tuple[str, str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": t, "alertname": name, "exp_alerts": alerts} for name, t, alerts in checks
        ],
    }


def _latency(bucket_increments: dict[str, int]) -> dict[str, str]:
    cumulative, out = 0, {}
    for le in ("0.005", "0.015", "0.025", "+Inf"):
        cumulative += bucket_increments.get(le, 0)
        out[f'credit_scorer_stage_seconds_bucket{{stage="total", le="{le}", {W}}}'] = f"0+{cumulative}x40"
    return out


def _decisions(accord: int, refus: int) -> dict[str, str]:
    """The champion's decisions, and a challenger refusing everything in the shadow: it pages no one and
    weighs in no ratio (its decisions are not published)."""
    champion = f'model_version="v1", role="champion", {W}'
    shadow = f'model_version="v2", role="challenger", {W}'
    return {
        f'credit_scorer_decisions_total{{decision="ACCORD", {champion}}}': f"0+{accord}x40",
        f'credit_scorer_decisions_total{{decision="REFUS", {champion}}}': f"0+{refus}x40",
        f'credit_scorer_decisions_total{{decision="ACCORD", {shadow}}}': "0+0x40",
        f'credit_scorer_decisions_total{{decision="REFUS", {shadow}}}': f"0+{5 * (accord + refus)}x40",
    }


LATENCY_ALERT = _alert(
    {"severity": "page"},
    "Event → decision p99 latency above the 15 ms SLO",
    "p99 over 5 minutes is 24.9ms (SLO 15 ms).",
)

CASES = [
    # p99 in the (15 ms, 25 ms] bucket: fires once above the SLO for 5 minutes; a fast stream never does
    _case(
        _latency({"0.025": 100}),
        [
            ("ScoringLatencyP99AboveSLO", "4m", []),
            ("ScoringLatencyP99AboveSLO", "10m", [LATENCY_ALERT]),
        ],
    ),
    _case(_latency({"0.005": 100}), [("ScoringLatencyP99AboveSLO", "30m", [])]),
    # 10 % approvals: below the band for 15 minutes; 70 % is inside the band
    _case(
        _decisions(10, 90),
        [
            ("ApprovalRateOutOfBand", "10m", []),
            (
                "ApprovalRateOutOfBand",
                "30m",
                [
                    _alert(
                        {"severity": "ticket", "model_version": "v1"},
                        "Approval rate of model v1 outside its band",
                        "Approval rate over 10 minutes is 10% (band 30%–95%).",
                    )
                ],
            ),
        ],
    ),
    _case(_decisions(70, 30), [("ApprovalRateOutOfBand", "30m", []), ("DeadLetterRateHigh", "30m", [])]),
    # 10 dead letters per 90 decisions: 10 % > 1 %
    _case(
        {
            **_decisions(60, 30),
            f'credit_scorer_dead_letters_total{{reason="invalid_json", {W}}}': "0+10x40",
        },
        [
            (
                "DeadLetterRateHigh",
                "15m",
                [
                    _alert(
                        {"severity": "ticket"},
                        "Too many events sent to the dead-letter topic",
                        "10% of events dead-lettered over 5 minutes (limit 1%).",
                    )
                ],
            )
        ],
    ),
    # lag above 1000 and growing for 10 minutes; a large but shrinking lag does not page
    _case(
        {
            f'credit_scorer_consumer_lag{{topic="apps", partition="0", {W}}}': "1000+100x40",
            f'credit_scorer_consumer_lag{{topic="apps", partition="1", {W}}}': "500+0x40",
            f'credit_scorer_consumer_lag{{topic="old", partition="0", {W}}}': "5000-100x40",
        },
        [
            ("ConsumerLagGrowing", "5m", []),
            (
                "ConsumerLagGrowing",
                "25m",
                [
                    _alert(
                        {"severity": "page", "topic": "apps"},
                        "Consumer lag on apps keeps growing",
                        "The workers fall behind: lag is growing for 10 minutes and above 1000 records.",
                    )
                ],
            ),
        ],
    ),
    # PSI 0.3 on one feature for 15 minutes (0.05 on the score: stable); moderate drift waits an hour
    _case(
        {
            f'credit_scorer_psi{{feature="AMT_CREDIT", {W}}}': "0.3x90",
            f'credit_scorer_psi{{feature="score", {W}}}': "0.05x90",
        },
        [
            ("DriftPSIHigh", "10m", []),
            (
                "DriftPSIHigh",
                "20m",
                [
                    _alert(
                        {"severity": "ticket", "feature": "AMT_CREDIT"},
                        "Significant drift of AMT_CREDIT (PSI > 0.25)",
                        "PSI of AMT_CREDIT against the training reference is 0.300: the live population "
                        "no longer matches training.",
                    )
                ],
            ),
            ("DriftPSIModerate", "30m", []),
            (
                "DriftPSIModerate",
                "80m",
                [
                    _alert(
                        {"severity": "info", "feature": "AMT_CREDIT"},
                        "Moderate drift of AMT_CREDIT (PSI > 0.1)",
                        "PSI of AMT_CREDIT is 0.300.",
                    )
                ],
            ),
        ],
    ),
    # approval rates by gender 0.7 apart for 40 minutes (age bands fine: 0.9): the four-fifths rule
    # fires after 30 minutes, for gender only; two workers, the lower ratio counts
    _case(
        {
            f'credit_scorer_disparate_impact_ratio{{segment="gender", {W}}}': "0.75x50",
            f'credit_scorer_disparate_impact_ratio{{segment="gender", {W2}}}': "0.7x50",
            f'credit_scorer_disparate_impact_ratio{{segment="age_band", {W}}}': "0.9x50",
        },
        [
            ("DisparateImpactBelowFourFifths", "20m", []),
            (
                "DisparateImpactBelowFourFifths",
                "40m",
                [
                    _alert(
                        {"severity": "ticket", "segment": "gender"},
                        "Approval rates by gender differ beyond the four-fifths rule",
                        "Lowest / highest approval rate among the gender groups is 0.70 (< 0.8): a legal "
                        "and a model risk; see the fairness panels.",
                    )
                ],
            ),
        ],
    ),
    # records pending and nothing handled: the worker's stall gauge grows by 60 s a minute; another
    # worker that keeps up (0) or was stalled for 20 s only does not page
    _case(
        {
            f"credit_scorer_stalled_seconds{{{W}}}": "0 0 60 120 180 240 300 360",
            f'credit_scorer_stalled_seconds{{instance="w2:9464", job="{JOB}"}}': "0 20 0 0 0 0 0 0",
        },
        [
            ("ScorerStalled", "2m", []),
            (
                "ScorerStalled",
                "4m",
                [
                    _alert(
                        {"severity": "page", "instance": "w1:9464"},
                        "Worker w1:9464 decides nothing while records wait",
                        "Records are pending on its partitions and none was decided or dead-lettered for "
                        "3m 0s: see its log (fetches starved, a dependency down) and "
                        "credit_scorer_fetch_recoveries_total.",
                    )
                ],
            ),
        ],
    ),
    # a worker unreachable for a minute
    _case(
        {
            f"up{{{W}}}": "1 1 1 0 0 0 0 0",
            f'up{{instance="api:8000", job="{slo.API_JOB}"}}': "1x8",
        },
        [
            ("ScorerInstanceDown", "3m", []),
            (
                "ScorerInstanceDown",
                "5m",
                [
                    _alert(
                        {"severity": "page", "instance": "w1:9464", "job": slo.WORKER_JOB},
                        f"{slo.WORKER_JOB} instance w1:9464 is down",
                        "Prometheus cannot scrape w1:9464 for 1 minute.",
                    )
                ],
            ),
        ],
    ),
]


def test_every_alert_fires_on_its_condition_and_only_then(tmp_path: Path) -> None:
    tested = {check["alertname"] for case in CASES for check in case["alert_rule_test"]}
    defined = {
        rule["alert"]
        for g in yaml.safe_load(build.RULES_FILE.read_text())["groups"]
        for rule in g["rules"]
        if "alert" in rule
    }
    assert tested == defined, f"alerts without a promtool test: {sorted(defined - tested)}"
    spec = {"rule_files": [str(build.RULES_FILE)], "evaluation_interval": "1m", "tests": CASES}
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1000))
    assert PROMTOOL is not None
    res = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
