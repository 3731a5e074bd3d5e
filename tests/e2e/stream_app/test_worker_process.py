"""The worker as a subprocess (`credit-scorer stream worker`): engines, SIGTERM, take-over, CLI errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from credit_scorer.settings import Settings
from devtools.harness import (
    WorkerProcess,
    application_payloads,
    collect,
    produce_payloads,
    sample_total,
    settings_env,
)
from devtools.launchers import free_port
from schemas.codec import decode_decision
from tests.fixtures.kafka import StreamEnv
from tests.polling import wait_until

pytestmark = pytest.mark.e2e


def with_metrics_port(settings: Settings) -> Settings:
    stream = settings.stream.model_copy(update={"metrics_port": free_port()})
    return settings.model_copy(update={"stream": stream})


def lag_partitions(worker: WorkerProcess) -> set[str]:
    """Partitions the worker currently owns (its consumer-lag gauge has one series per partition)."""
    return {
        line.split('partition="')[1].split('"')[0]
        for line in worker.metrics_text().splitlines()
        if line.startswith("credit_scorer_consumer_lag{")
    }


def _get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def settings_policy_version() -> str:
    from scoring.policy_file import load_policy

    return load_policy(Settings().policy.path).version


def log_tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_worker_process_scores_serves_metrics_and_stops_on_sigterm(
    make_stream_env: Callable[..., StreamEnv], tmp_path: Path, engine: str
) -> None:
    env = make_stream_env(partitions=2)
    settings = with_metrics_port(env.settings)
    web_port = free_port()
    stream = settings.stream.model_copy(update={"web_port": web_port})
    settings = settings.model_copy(update={"stream": stream})
    kafka = settings.kafka
    n = 300
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, range(n), id_prefix=engine)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, engine, log).start()
    try:
        await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads)
        keys = {k for k, _ in payloads}
        records = await collect(
            kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, to_end=True, timeout_s=90
        )
        assert len(records) == n, log_tail(log)
        assert {r.key for r in records} == {k for k, _ in payloads}
        expected = env.model.calibrator.apply(env.model.booster.predict(env.matrix[:n]))
        got = {r.key: decode_decision(r.value).probability_default for r in records}
        assert all(got[k] == pytest.approx(expected[i], abs=1e-12) for i, (k, _) in enumerate(payloads))
        await wait_until(
            lambda: sample_total(worker.metrics_text(), "credit_scorer_decisions_total") >= n, 10, "metrics"
        )
        page = worker.metrics_text()
        assert "credit_scorer_model_info{" in page and env.model.model_version in page
        assert sample_total(page, "credit_scorer_stage_seconds_count") > 0
        # the committed policy decides; every REFER also goes to the review topic (both engines)
        unknown_key = f"{engine}-unknown".encode()  # a client the cache does not know: referred
        unknown = {"application_id": unknown_key.decode(), "sk_id_curr": 9_999_999, "AMT_CREDIT": 5e5}
        await produce_payloads(
            kafka.bootstrap_servers, kafka.applications_topic, [(unknown_key, json.dumps(unknown).encode())]
        )
        read = await collect(kafka.bootstrap_servers, kafka.decisions_topic, keys={unknown_key}, timeout_s=60)
        late = [r for r in read if r.key == unknown_key]
        assert len(late) == 1, log_tail(log)
        decisions = [decode_decision(r.value) for r in [*records, *late]]
        assert {d.policy_version for d in decisions} == {settings_policy_version()}
        referred = {d.application_id.encode() for d in decisions if d.decision.value == "REFER"}
        assert unknown_key in referred
        queue = await collect(kafka.bootstrap_servers, kafka.review_topic, keys=referred, timeout_s=60)
        assert {r.key for r in queue} == referred, log_tail(log)
        status, health = _get_json(f"http://127.0.0.1:{web_port}/health")
        assert (status, health["status"], health["engine"]) == (200, "healthy", engine), health
        assert health["model_version"] == env.model.model_version
        assert health["stalled_seconds"] < 30  # caught up: at most the last commit in flight
        code = worker.terminate(timeout_s=30)
        assert code == 0, log_tail(log)
    finally:
        worker.kill()


@pytest.mark.slow
async def test_two_workers_share_partitions_and_one_takes_over_after_a_kill(
    make_stream_env: Callable[..., StreamEnv], tmp_path: Path
) -> None:
    env = make_stream_env(partitions=4)
    kafka = env.settings.kafka
    n = 3000
    payloads = application_payloads(
        env.model.schema, env.ids, env.matrix, [i % 2000 for i in range(n)], id_prefix="t"
    )
    a = WorkerProcess(with_metrics_port(env.settings), "batch", tmp_path / "a.log").start()
    b = WorkerProcess(with_metrics_port(env.settings), "batch", tmp_path / "b.log").start()
    try:
        # both in the group, two partitions each (the lag gauge lists a worker's current partitions)
        await wait_until(
            lambda: len(lag_partitions(a)) == 2 and len(lag_partitions(b)) == 2, 180, "a balanced group"
        )
        assert lag_partitions(a) | lag_partitions(b) == {"0", "1", "2", "3"}
        producing = asyncio.ensure_future(
            produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads, rate=300)
        )
        decided = lambda w: sample_total(w.metrics_text(), "credit_scorer_decisions_total")  # noqa: E731
        await wait_until(lambda: decided(a) > 0 and decided(b) > 0, 30, "both workers deciding")
        a.kill()
        killed_at = decided(b)
        await wait_until(lambda: producing.done(), 60, "the producer")
        await producing
        keys = {k for k, _ in payloads}
        records = await collect(kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, timeout_s=120)
        assert {r.key for r in records} == {k for k, _ in payloads}, log_tail(tmp_path / "b.log")
        # the survivor took over every partition and decided the rest
        await wait_until(lambda: lag_partitions(b) == {"0", "1", "2", "3"}, 10, "b owning every partition")
        assert decided(b) > killed_at
        assert b.terminate(30) == 0
    finally:
        a.kill()
        b.kill()


def test_worker_without_a_model_exits_with_a_one_line_error(tmp_path: Path) -> None:
    settings = Settings()
    env = {
        **os.environ,
        **settings_env(settings),
        "CREDIT_SCORER_PATHS__DATA_DIR": str(tmp_path / "var"),
        "CREDIT_SCORER_MODEL__PATH": str(tmp_path / "no-such-model"),
    }
    exe = Path(sys.executable).with_name("credit-scorer")
    proc = subprocess.run(
        [str(exe), "stream", "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no-such-model" in lines[0], proc.stderr
