"""Dashboards, alert rules and live drift against a REAL worker scraped by Debian's Prometheus.

Stack: Tansu broker + redis-server (the small model's feature table cached) + ``credit-scorer stream
worker`` as a subprocess (metrics port, drift observer wired by ``stream_app.worker``, a challenger of
the same feature schema scored in the shadow, so the champion/challenger panels have data) + Prometheus
scraping it every second with the generated rules file. A background producer streams applications
(with a few malformed events and unknown clients, so the dead-letter and cache-miss panels have
data) while every panel query of the generated dashboard JSON and every alert signal of the generated
rules is evaluated through Prometheus's HTTP API (:mod:`dashboards.verify`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from dashboards import build, slo
from dashboards.challenger_panels import agreement_expr
from dashboards.cli import app as dashboards_cli
from dashboards.panels import DASHBOARDS
from dashboards.promql import PanelQuery, alert_rules, expand_grafana_variables
from dashboards.verify import PrometheusAPI, check_alert_signals, check_panel, verify
from devtools.harness import application_payloads, create_topics, produce_payloads
from tests.fixtures.kafka import StreamEnv, run_async
from tests.fixtures.models import synthetic_amounts_policy
from tests.fixtures.prometheus import SCRAPE_INTERVAL_S, PrometheusServer, free_port, wait_until

pytestmark = pytest.mark.integration

RATE_PER_S = 200
CHUNK_S = 0.5
DRIFT_MIN_EVENTS = 200
DRIFT_HALF_LIFE_EVENTS = 300


def worker_command() -> list[str]:
    script = Path(sys.executable).with_name("credit-scorer")
    if script.is_file():
        return [str(script), "stream", "worker"]
    return [sys.executable, "-c", "from credit_scorer.cli import main; main()", "stream", "worker"]


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    metrics_target: str
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_worker(env: StreamEnv, log_path: Path, challenger: Path, shadow_topic: str) -> Worker:
    s = env.settings
    port = free_port()
    variables = {
        "CREDIT_SCORER_MODEL__CHALLENGER_PATH": str(challenger),
        "CREDIT_SCORER_KAFKA__SHADOW_TOPIC": shadow_topic,
        "CREDIT_SCORER_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
        "CREDIT_SCORER_KAFKA__APPLICATIONS_TOPIC": s.kafka.applications_topic,
        "CREDIT_SCORER_KAFKA__DECISIONS_TOPIC": s.kafka.decisions_topic,
        "CREDIT_SCORER_KAFKA__DEAD_LETTER_TOPIC": s.kafka.dead_letter_topic,
        "CREDIT_SCORER_KAFKA__CONSUMER_GROUP": s.kafka.consumer_group,
        "CREDIT_SCORER_KAFKA__SESSION_TIMEOUT_S": str(s.kafka.session_timeout_s),
        "CREDIT_SCORER_KAFKA__REBALANCE_TIMEOUT_S": str(s.kafka.rebalance_timeout_s),
        "CREDIT_SCORER_REDIS__URL": s.redis.url,
        "CREDIT_SCORER_REDIS__KEY_PREFIX": s.redis.key_prefix,
        "CREDIT_SCORER_MODEL__PATH": str(s.model.path),
        # most synthetic rows would be knocked out by the committed credit/goods cap: no approval to rate
        "CREDIT_SCORER_POLICY__PATH": str(synthetic_amounts_policy(log_path.with_suffix(".policy.yaml"))),
        "CREDIT_SCORER_STREAM__METRICS_PORT": str(port),
        "CREDIT_SCORER_STREAM__WEB_PORT": "0",
        "CREDIT_SCORER_DRIFT__MIN_EVENTS": str(DRIFT_MIN_EVENTS),
        "CREDIT_SCORER_DRIFT__HALF_LIFE_EVENTS": str(DRIFT_HALF_LIFE_EVENTS),
        "CREDIT_SCORER_DRIFT__PUBLISH_EVERY_S": "0.2",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            worker_command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **variables},
            cwd=log_path.parent,  # no stray .env of the checkout
        )
    worker = Worker(proc, f"127.0.0.1:{port}", log_path)

    def metrics_served() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"worker exited with {proc.returncode}:\n{worker.log_tail()}")
        try:
            return "credit_scorer_model_info" in httpx.get(f"http://{worker.metrics_target}/metrics").text
        except httpx.HTTPError:
            return False

    wait_until(metrics_served, 60.0, "the worker's /metrics endpoint")
    return worker


class Stream:
    """Produces application events at a steady rate in a background thread until stopped."""

    def __init__(self, env: StreamEnv) -> None:
        self.env = env
        self.shift = 1.0  # AMT_CREDIT multiplier: > 1 moves the stream away from the training population
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-producer")
        self._rng = np.random.default_rng(1)
        self.error: BaseException | None = None

    def _chunk(self, n_chunk: int) -> list[tuple[bytes, bytes]]:
        env = self.env
        rows = self._rng.integers(0, len(env.ids), RATE_PER_S // 2).tolist()
        matrix = env.matrix
        if self.shift != 1.0:
            matrix = matrix.copy()
            matrix[:, env.model.schema.index["AMT_CREDIT"]] *= self.shift
        records = application_payloads(env.model.schema, env.ids, matrix, rows, id_prefix=f"c{n_chunk}")
        bad = (f"bad-{n_chunk}".encode(), b"{not json")
        unknown_id = f"unknown-{n_chunk}"
        unknown = (unknown_id.encode(), orjson.dumps({"application_id": unknown_id, "sk_id_curr": 9_999_999}))
        return [*records, bad, unknown]

    def _run(self) -> None:
        kafka = self.env.settings.kafka
        n_chunk = 0
        try:
            while not self._stop.is_set():
                chunk = self._chunk(n_chunk)
                asyncio.run(
                    produce_payloads(
                        kafka.bootstrap_servers, kafka.applications_topic, chunk, rate=RATE_PER_S
                    )
                )
                self.sent += len(chunk)
                n_chunk += 1
        except BaseException as exc:
            self.error = exc

    def start(self) -> Stream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class LiveStack:
    env: StreamEnv
    worker: Worker
    prometheus: PrometheusServer
    stream: Stream


@pytest.fixture
def live_stack(
    make_stream_env: Callable[..., StreamEnv],
    make_model_dir: Callable[..., Path],
    prometheus_server: Callable[..., PrometheusServer],
    tmp_path: Path,
) -> Iterator[LiveStack]:
    env = make_stream_env(partitions=2)
    shadow_topic = f"shadow-{env.topics.group}"
    run_async(create_topics(env.settings.kafka.bootstrap_servers, [shadow_topic], 2))
    worker = start_worker(env, tmp_path / "worker.log", make_model_dir(seed=1), shadow_topic)
    stream: Stream | None = None
    try:
        prom = prometheus_server({slo.WORKER_JOB: [worker.metrics_target]}, rule_files=[build.RULES_FILE])
        prom.wait_targets_up()
        stream = Stream(env).start()
        yield LiveStack(env, worker, prom, stream)
        assert stream.error is None, f"producer failed: {stream.error!r}"
    finally:
        if stream is not None:
            stream.stop()
        worker.stop()


def _rules() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(build.RULES_FILE.read_text())
    return doc


@pytest.mark.slow
def test_live_worker_feeds_every_panel_and_alert_and_a_shifted_stream_fires_the_drift_alert(
    live_stack: LiveStack,
) -> None:
    """One stack (≈20 s to start) for both checks: every query first, then the population shift."""
    _every_panel_query_and_alert_signal_returns_data(live_stack)
    _shifted_stream_raises_psi_and_fires_the_drift_alert(live_stack)


def _every_panel_query_and_alert_signal_returns_data(live_stack: LiveStack) -> None:
    boards = [build.dashboard_model(uid) for uid in DASHBOARDS]
    rules = _rules()
    failures: list[str] = []
    summary: list[int] = []

    def all_ok() -> bool:
        checks = verify(
            live_stack.prometheus.url, boards, rules, window_s=30, rate_interval=f"{4 * SCRAPE_INTERVAL_S}s"
        )
        failures[:] = [str(c) for c in checks if not c.ok]
        summary[:] = [len(checks)]
        return not failures

    try:
        wait_until(all_ok, 60.0, "every panel and alert signal to return data")
    except pytest.fail.Exception:
        pytest.fail(
            "checks still failing:\n"
            + "\n".join(failures)
            + f"\n--- worker log:\n{live_stack.worker.log_tail()}"
        )
    # the checks covered every target and every alert (not a vacuous pass)
    n_targets = sum(len(p.get("targets", [])) for b in boards for p in b["panels"])
    assert summary[0] >= n_targets + len(alert_rules(rules))
    # negative controls on the same live Prometheus: a panel on a metric nobody exports, a bad query,
    # a label the series do not carry, and an alert whose signal is absent are all reported
    api = PrometheusAPI(live_stack.prometheus.url)
    try:
        now = time.time()

        def panel(expr: str, legend: frozenset[str] = frozenset()) -> str | None:
            return check_panel(
                api, PanelQuery("t", "t", "A", expr, legend, "time_series", False), now - 30, now, "4s"
            ).problem

        assert panel("credit_scorer_not_exported_total") == "no series"
        assert (panel("sum(rate(credit_scorer_decisions_total[4s])") or "").startswith("query error")
        assert "lacks the legend label" in (
            panel("sum(credit_scorer_in_flight_events)", frozenset({"pod"})) or ""
        )
        [absent] = check_alert_signals(api, "X", "credit_scorer:never_recorded > 1")
        assert absent.problem == "no series"
    finally:
        api.close()
    # and the operator's command says the same
    url = live_stack.prometheus.url
    res = CliRunner().invoke(
        dashboards_cli, ["verify", "--url", url, "--window", "30", "--rate-interval", "4s"]
    )
    assert res.exit_code == 0, res.output
    assert f"{summary[0]}/{summary[0]} checks ok" in res.output
    # the challenger (another seed, same schema) is a ratio of the champion's decisions, not noise
    prom = live_stack.prometheus
    [agree] = prom.query(expand_grafana_variables(agreement_expr(), "30s"))["result"]
    assert 0.0 < float(agree["value"][1]) <= 1.0, agree
    roles = prom.query("sum by (role) (credit_scorer_decisions_total)")["result"]
    counts = {r["metric"]["role"]: float(r["value"][1]) for r in roles}
    # every champion decision shadowed (a scrape may fall between the two counts of one batch)
    assert set(counts) == {"champion", "challenger"}, counts
    assert 0.9 <= counts["challenger"] / counts["champion"] <= 1.0, counts


def _shifted_stream_raises_psi_and_fires_the_drift_alert(live_stack: LiveStack) -> None:
    prom, stream = live_stack.prometheus, live_stack.stream
    drift_expr = dict(alert_rules(_rules()))["DriftPSIHigh"]
    # training-like population first: PSI exported for the score and the features, no drift alert
    psi = prom.wait_series('credit_scorer_psi{feature="score"}', timeout_s=60)
    assert psi and float(psi[0]["value"][1]) < slo.DRIFT_PSI_ALERT
    baseline = {
        s["metric"]["feature"]: float(s["value"][1]) for s in prom.query("credit_scorer_psi")["result"]
    }
    assert "score" in baseline and len(baseline) > 1
    assert prom.query(drift_expr)["result"] == [], f"drift alert on training-like data: {baseline}"
    # the worker folds every scored event exactly once (one drift observer wired, not zero or two)
    # (the champion's decisions: the challenger's shadow decisions are not observed)
    [ratio] = prom.query(
        'sum(credit_scorer_drift_observations_total) / sum(credit_scorer_decisions_total{role="champion"})'
    )["result"]
    assert 0.9 <= float(ratio["value"][1]) <= 1.1, ratio

    stream.shift = 4.0  # requested amounts ×4: AMT_CREDIT and the ratios built on it leave their bins
    fired = wait_until(
        lambda: prom.query(drift_expr)["result"], 60.0, f"{drift_expr!r} to return a series after the shift"
    )
    drifted = {s["metric"]["feature"]: float(s["value"][1]) for s in fired}
    assert all(v > slo.DRIFT_PSI_ALERT for v in drifted.values())
    credit_features = {
        "AMT_CREDIT",
        "CREDIT_INCOME_RATIO",
        "CREDIT_ANNUITY_RATIO",
        "CREDIT_GOODS_RATIO",
        "score",
    }
    assert set(drifted) & credit_features, drifted
    assert set(drifted) <= credit_features, f"features unrelated to AMT_CREDIT drifted: {drifted}"
    # Prometheus's own rule engine sees it too: the alert is pending (its `for:` is 15 minutes)
    alerts = wait_until(
        lambda: [a for a in prom._api("alerts")["alerts"] if a["labels"]["alertname"] == "DriftPSIHigh"],
        15.0,
        "the DriftPSIHigh alert to be pending",
    )
    assert {a["state"] for a in alerts} <= {"pending", "firing"}
