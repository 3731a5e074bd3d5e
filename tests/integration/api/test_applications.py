"""POST /applications against the real Tansu broker (event consumed back), the broker-down 503, and
`credit-scorer api serve` as a real uvicorn process answering over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from credit_scorer.settings import RedisSettings, Settings
from devtools.harness import collect, load_cache, settings_env
from devtools.launchers import free_port
from schemas.codec import parse_application
from tests.fixtures.kafka import run_async
from tests.integration.api.conftest import api_settings

pytestmark = pytest.mark.integration


def with_kafka(settings: Settings, bootstrap_servers: str, topic: str, **kafka: Any) -> Settings:
    update = {"bootstrap_servers": bootstrap_servers, "applications_topic": topic, **kafka}
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update=update)})


def test_applications_are_published_and_consumed_back(
    small_model_dir: Path,
    redis_settings: RedisSettings,
    kafka_bootstrap: str,
    make_topics: Callable[..., Any],
) -> None:
    topics = make_topics(2)
    settings = with_kafka(api_settings(redis_settings, small_model_dir), kafka_bootstrap, topics.applications)
    bodies = [
        {"sk_id_curr": 100_001, "application_id": "app-1", "AMT_CREDIT": 250_000.0},
        {"sk_id_curr": 100_002, "NAME_CONTRACT_TYPE": "Cash loans", "HOUR_APPR_PROCESS_START": 9},
    ]
    with TestClient(create_app(settings)) as client:
        answers = []
        for body in bodies:
            response = client.post("/applications", json=body)
            assert response.status_code == 202, response.text
            answers.append(response.json())
        assert client.post("/applications", json={"sk_id_curr": -1}).status_code == 422
    assert answers[0]["application_id"] == "app-1"
    assert answers[1]["application_id"] == answers[1]["event_id"]  # defaults to the event id
    assert all(a["topic"] == topics.applications for a in answers)

    records = run_async(collect(kafka_bootstrap, topics.applications, 2, timeout_s=20))
    assert len(records) == 2
    by_key = {r.key.decode(): r for r in records}
    assert set(by_key) == {a["application_id"] for a in answers}
    for body, answer in zip(bodies, answers, strict=True):
        record = by_key[answer["application_id"]]
        assert (record.partition, record.offset) == (answer["partition"], answer["offset"])
        event = parse_application(record.value, 64 * 1024)
        assert event.event_id == answer["event_id"] and event.sk_id_curr == body["sk_id_curr"]
        carried = {k: v for k, v in body.items() if k not in ("sk_id_curr", "application_id")}
        assert event.scoring_fields() == carried  # only the fields sent, nothing invented


def test_applications_503_when_the_broker_is_unreachable(
    small_model_dir: Path, redis_settings: RedisSettings
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    settings = with_kafka(api_settings(redis_settings, small_model_dir, publish_timeout_s=2.0), dead, "apps")
    with TestClient(create_app(settings)) as client:
        for _ in range(2):  # a failed start leaves nothing behind: the next request tries again
            started = time.monotonic()
            response = client.post("/applications", json={"sk_id_curr": 100_001})
            assert response.status_code == 503
            assert dead in response.json()["detail"]
            assert time.monotonic() - started < 10
        assert client.get("/health").status_code == 503  # no cache loaded under this prefix either


@pytest.fixture
def served_api(
    small_model_dir: Path,
    redis_settings: RedisSettings,
    cached_table: Any,
    tmp_path: Path,
) -> Iterator[str]:
    feature_dir, _ids, _matrix = cached_table
    load_cache(redis_settings.url, redis_settings.key_prefix, feature_dir)
    port = free_port()
    env = {
        **os.environ,
        **settings_env(api_settings(redis_settings, small_model_dir)),
        "CREDIT_SCORER_API__PORT": str(port),
    }
    exe = Path(sys.executable).with_name("credit-scorer")
    log = tmp_path / "api.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(exe), "api", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a cold start (numba, LightGBM) on a busy 2-core machine
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "api serve did not become healthy"
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_command_answers_over_http(served_api: str, cached_table: Any) -> None:
    _dir, ids, _matrix = cached_table
    with httpx.Client(base_url=served_api) as client:
        answer = client.post("/predict", json={"sk_id_curr": int(ids[0])})
        assert answer.status_code == 200 and answer.json()["sk_id_curr"] == int(ids[0])
        assert client.post("/predict", json={"sk_id_curr": 1}).json() == {"detail": "Client not found"}
        assert 'route="/predict"' in client.get("/metrics").text
    # the image's HEALTHCHECK script: healthy on this API, unhealthy (exit 1, one line) on a dead port
    script = Path(__file__).resolve().parents[3] / "docker" / "healthcheck.py"
    for url, code in ((f"{served_api}/health", 0), (f"http://127.0.0.1:{free_port()}/health", 1)):
        env = {"PATH": os.environ["PATH"], "HEALTHCHECK_URL": url}
        result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
        assert result.returncode == code, result.stdout
        assert (
            (result.stdout.startswith("unhealthy: ") and url in result.stdout) if code else not result.stdout
        )


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"CREDIT_SCORER_API__PORT": "abc"}, [], "CREDIT_SCORER_API__PORT"),
        ({"CREDIT_SCORER_REDIS__URL": "foo://x"}, [], "invalid Redis URL foo://x"),
        ({}, ["--port", "70000"], "--port"),
    ],
)
def test_serve_refuses_bad_configuration_in_one_line(
    env: dict[str, str], args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from credit_scorer.cli import app
    from credit_scorer.settings import get_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["api", "serve", *args])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
