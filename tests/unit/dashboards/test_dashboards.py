"""Dashboards and rules as code: reproducible bytes, valid Prometheus files, parsable queries."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dashboards import build, slo
from dashboards.cli import app
from dashboards.exceptions import StaleArtifactError
from dashboards.panels import DASHBOARDS
from dashboards.promql import (
    alert_rules,
    alert_signals,
    expand_grafana_variables,
    legend_labels,
    panel_queries,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="Debian's promtool is not installed (make setup)"
)


def test_regenerating_reproduces_the_committed_files_byte_for_byte() -> None:
    for path, content in build.artifacts().items():
        assert path.exists(), f"{path} is not committed: run `credit-scorer dashboards build`"
        assert path.read_bytes() == content, f"{path} is stale: run `credit-scorer dashboards build`"
    assert build.render_dashboard("credit-scorer-overview") == build.render_dashboard(
        "credit-scorer-overview"
    )


def test_check_names_the_stale_file(tmp_path: Path) -> None:
    json_dir, rules = tmp_path / "json", tmp_path / "rules.yml"
    build.write_all(json_dir, rules)
    assert len(build.check_all(json_dir, rules)) == len(DASHBOARDS) + 1
    target = json_dir / "credit-scorer-drift.json"
    target.write_bytes(target.read_bytes().replace(b"PSI", b"psi", 1))
    with pytest.raises(StaleArtifactError, match=r"credit-scorer-drift\.json: differs"):
        build.check_all(json_dir, rules)
    target.unlink()
    with pytest.raises(StaleArtifactError, match=r"credit-scorer-drift\.json: missing"):
        build.check_all(json_dir, rules)


def test_cli_build_then_check(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--json-dir", str(tmp_path / "json"), "--rules-file", str(tmp_path / "r.yml")]
    first = runner.invoke(app, ["build", *args])
    assert first.exit_code == 0, first.output
    assert runner.invoke(app, ["build", "--check", *args]).exit_code == 0
    (tmp_path / "r.yml").write_text("groups: []\n")
    stale = runner.invoke(app, ["build", "--check", *args])
    assert stale.exit_code == 1
    assert "r.yml: differs from the generated content" in stale.output


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules() -> None:
    cfg = subprocess.run(
        [PROMTOOL, "check", "config", str(build.PROMETHEUS_CONFIG)], capture_output=True, text=True
    )
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    assert "1 rule files found" in cfg.stdout + cfg.stderr
    rules = subprocess.run(
        [PROMTOOL, "check", "rules", str(build.RULES_FILE)], capture_output=True, text=True
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


@needs_promtool
def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m]) > \n")
    res = subprocess.run([PROMTOOL, "check", "rules", str(bad)], capture_output=True, text=True)
    assert res.returncode != 0  # the check above can fail


def test_every_required_panel_exists_and_targets_the_provisioned_datasource() -> None:
    overview = build.dashboard_model("credit-scorer-overview")
    drift = build.dashboard_model("credit-scorer-drift")
    queries = panel_queries(overview) + panel_queries(drift)
    exprs = " ".join(q.expr for q in queries)
    for needle in (
        'stage="total"',
        "sum by (stage, le)",
        "credit_scorer_decisions_total",
        'decision="ACCORD"',
        "credit_scorer_default_probability_bucket",
        "credit_scorer_dead_letters_total",
        "credit_scorer_feature_cache_misses_total",
        "credit_scorer_consumer_lag",
        f'up{{job="{slo.WORKER_JOB}"}}',
        "credit_scorer_psi",
    ):
        assert needle in exprs, f"no panel queries {needle}"
    for board in (overview, drift):
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "prometheus", "uid": slo.DATASOURCE_UID}
    provisioned = yaml.safe_load((build.PACKAGE_DIR / "provisioning/datasources/prometheus.yml").read_text())
    assert provisioned["datasources"][0]["uid"] == slo.DATASOURCE_UID
    heat = [q for q in queries if q.format == "heatmap"]
    assert heat and all("le" in q.legend_labels for q in heat)


def test_committed_json_is_what_grafana_reads() -> None:
    doc = json.loads((build.JSON_DIR / "credit-scorer-overview.json").read_text())
    assert doc["uid"] == "credit-scorer-overview"
    assert len(panel_queries(doc)) >= 12


def test_expand_grafana_variables() -> None:
    assert expand_grafana_variables("rate(x[$__rate_interval])", "15s") == "rate(x[15s])"
    assert expand_grafana_variables("rate(x[${__interval}])", "15s", "5s") == "rate(x[5s])"
    with pytest.raises(ValueError, match=r"'\$job'"):
        expand_grafana_variables('up{job="$job"}', "15s")


def test_legend_labels() -> None:
    assert legend_labels("{{topic}}/{{ partition }}") == {"topic", "partition"}
    assert legend_labels("p99") == frozenset()
    assert legend_labels(None) == frozenset()


@pytest.mark.parametrize(
    ("expr", "signals"),
    [
        ("a:b:c > 0.015", ["a:b:c"]),
        ("r < 0.3 or r > 0.95", ["r"]),
        ("deriv(lag[10m]) > 0 and lag > 1000", ["deriv(lag[10m])", "lag"]),
        ('up{job=~"a|b"} == 0', ['up{job=~"a|b"}']),
        ('absent(up{job="w"})', ['up{job="w"}']),
        ("(sum(rate(x[5m])) or vector(0)) / y >= 1e-2", ["(sum(rate(x[5m])) or vector(0)) / y"]),
        ("0.25 < psi", ["psi"]),
        ("a > bool 1", ["a"]),
        ("a > on(x) group_left b", ["a", "b"]),
        ('x{l=">"} != 0 unless y', ['x{l=">"}', "y"]),
        ("sort_desc(orphan)", ["sort_desc(orphan)"]),
    ],
)
def test_alert_signals(expr: str, signals: list[str]) -> None:
    assert alert_signals(expr) == signals


def test_alert_signals_rejects_a_literal_only_expression() -> None:
    with pytest.raises(ValueError, match="compares no series"):
        alert_signals("1 > 0")


def test_every_alert_reduces_to_signals_and_required_alerts_exist() -> None:
    rules = yaml.safe_load(build.RULES_FILE.read_text())
    alerts = dict(alert_rules(rules))
    assert {
        "ScoringLatencyP99AboveSLO",
        "ApprovalRateOutOfBand",
        "DeadLetterRateHigh",
        "ConsumerLagGrowing",
        "DriftPSIHigh",
        "ScorerInstanceDown",
    } <= set(alerts)
    assert alerts["DriftPSIHigh"].endswith(f"> {slo.DRIFT_PSI_ALERT}")
    assert alerts["ScoringLatencyP99AboveSLO"].endswith(f"> {slo.LATENCY_SLO_SECONDS}")
    for name, expr in alerts.items():
        assert alert_signals(expr), name
