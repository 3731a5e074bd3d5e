"""The store's routes against a real store (SQLite), real Redis, the small model and a real broker:
/predict's decision reaches the decisions topic, the stored record is served back, pages, 404/422/503."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from credit_scorer.settings import RedisSettings
from decision_store.migrate import upgrade
from decision_store.records import decode_decision
from decision_store.store import DecisionStore
from devtools.harness import KafkaTopics, collect, load_cache, settings_for
from tests.fixtures.kafka import run_async
from tests.fixtures.store import decision_doc
from tests.integration.api.conftest import api_settings

pytestmark = pytest.mark.integration


def test_predict_publishes_its_decision_and_the_store_routes_serve_it(
    small_model_dir: Path,
    redis_settings: RedisSettings,
    cached_table: Any,
    kafka_bootstrap: str,
    make_topics: Callable[..., KafkaTopics],
    make_store_url: Callable[[str], str],
) -> None:
    feature_dir, ids, _ = cached_table
    load_cache(redis_settings.url, redis_settings.key_prefix, feature_dir)
    topics = make_topics(1)
    url = make_store_url("sqlite")
    base = api_settings(redis_settings, small_model_dir)
    kafka = settings_for(kafka_bootstrap, topics).kafka
    settings = base.model_copy(update={"kafka": kafka, "store": base.store.model_copy(update={"url": url})})
    store = DecisionStore.from_url(url)
    client_id = int(ids[0])
    with TestClient(create_app(settings)) as client:
        assert client.get("/decisions/none").status_code == 503  # no table yet: the store is not ready
        upgrade(store.engine)
        answer = client.post("/predict", json={"sk_id_curr": client_id}).json()
        app_id = answer["application_id"]
        published = run_async(collect(kafka_bootstrap, topics.decisions, keys=[app_id.encode()]))
        record = next(orjson.loads(r.value) for r in published if r.key == app_id.encode())
        assert (record["sk_id_curr"], record["decision"]) == (client_id, answer["decision"])
        assert record["probability_default"] == answer["probability_refusal"]
        assert record["score"] == answer["score"]  # P(approval) in both

        rows = [decode_decision(r.value, _now()) for r in published]
        older = [
            decision_doc(f"old-{i}", client_id, decided_at=f"2026-01-0{i + 1}T00:00:00Z") for i in range(3)
        ]
        rows += [decode_decision(orjson.dumps(d), _now()) for d in older]
        store.upsert([r for r in rows if r is not None])

        got = client.get(f"/decisions/{app_id}").json()
        assert got["decision"]["document"] == record and got["review"] is None
        first = client.get(f"/clients/{client_id}/decisions", params={"limit": 2}).json()
        assert (first["total"], first["next_offset"]) == (4, 2)
        assert first["items"][0]["application_id"] == app_id  # newest first
        rest = client.get(f"/clients/{client_id}/decisions", params={"limit": 2, "offset": 2}).json()
        assert rest["next_offset"] is None
        assert {i["application_id"] for i in first["items"] + rest["items"]} == {
            app_id,
            "old-0",
            "old-1",
            "old-2",
        }

        assert client.get("/decisions/absent").status_code == 404
        assert client.get("/clients/424242/decisions").status_code == 404
        assert client.get("/clients/0/decisions").status_code == 422
        assert client.get(f"/clients/{client_id}/decisions", params={"limit": 0}).status_code == 422
        features = client.get(f"/clients/{client_id}/features").json()
        assert features["features"] and all("edges" in f["population"] for f in features["features"])
    store.close()

    down = settings.model_copy(
        update={"store": settings.store.model_copy(update={"url": "postgresql+psycopg://u@127.0.0.1:1/x"})}
    )
    with TestClient(create_app(down)) as client:
        response = client.get("/decisions/any")
        assert response.status_code == 503 and "decision store unavailable" in response.json()["detail"]


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
