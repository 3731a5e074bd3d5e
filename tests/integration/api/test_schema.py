"""Schemathesis against a live uvicorn server (real HTTP, real Redis, real Tansu broker): generated
valid and invalid requests for every operation of the OpenAPI document never get a server error, and
every JSON answer conforms to its documented schema."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app
from credit_scorer.settings import RedisSettings
from devtools.harness import load_cache
from devtools.launchers import free_port
from tests.integration.api.conftest import api_settings

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))  # per operation and mode; raise to dig


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port in a thread; stopped with should_exit."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_api(
    small_model_dir: Path,
    redis_settings: RedisSettings,
    cached_table: Any,
    kafka_bootstrap: str,
    make_topics: Callable[..., Any],
    make_store_url: Callable[[str], str],
) -> Iterator[str]:
    from decision_store.migrate import upgrade
    from decision_store.store import DecisionStore

    feature_dir, _ids, _matrix = cached_table
    load_cache(redis_settings.url, redis_settings.key_prefix, feature_dir)
    settings = api_settings(redis_settings, small_model_dir)
    topics = make_topics(1)
    kafka = settings.kafka.model_copy(
        update={
            "bootstrap_servers": kafka_bootstrap,
            "applications_topic": topics.applications,
            "decisions_topic": topics.decisions,
        }
    )
    store = DecisionStore.from_url(make_store_url("sqlite"))  # migrated: the store routes answer
    upgrade(store.engine)
    store.close()
    store_settings = settings.store.model_copy(update={"url": str(store.engine.url)})
    app = create_app(settings.model_copy(update={"kafka": kafka, "store": store_settings}))
    with LiveServer(app) as server:
        yield server.url


def fuzz(operation: Any, mode: Any, base_url: str, checks: list[Any], statuses: set[int]) -> None:
    """Up to EXAMPLES generated requests of one operation (deterministic: derandomized)."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, timeout=10)
        case.validate_response(response, checks=checks)
        statuses.add(response.status_code)

    run()


def test_no_server_error_on_generated_requests(live_api: str) -> None:
    spec = httpx.get(f"{live_api}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    seen: dict[str, set[int]] = {}
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        for path, methods in schema.items():
            for method, operation in methods.items():
                if mode is schemathesis.GenerationMode.NEGATIVE and method != "post":
                    continue  # nothing to make invalid in a GET without parameters
                fuzz(operation, mode, live_api, checks, seen.setdefault(f"{method.upper()} {path}", set()))
    assert seen["POST /predict"] >= {200, 422}, seen  # generation reached both the scorer and validation
    assert 202 in seen["POST /applications"], seen  # and the broker
    assert seen["GET /health"] == {200}, seen
