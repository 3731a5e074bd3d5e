"""REST API against a real redis-server and the real small model (in-process ASGI via TestClient).

/predict answers must equal ``scoring.decide.decide`` on the same cached vector, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.models import HealthResponse, PredictResponse
from credit_scorer.settings import RedisSettings, Settings
from devtools.harness import load_cache
from devtools.launchers import RedisServer, free_port
from scoring.decide import DecideOptions, ScoringInput, decide
from scoring.features import CachedFeatures
from scoring.model import load_model
from scoring.policy_file import prepare_with_policy
from scoring.prepared import PreparedModel
from tests.fixtures.redis import small_schema as other_schema
from tests.integration.api.conftest import api_settings

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class ApiEnv:
    settings: Settings
    model: PreparedModel
    ids: np.ndarray
    matrix: np.ndarray
    loaded_version: str


@pytest.fixture(scope="module")
def prepared_small(small_model_dir: Path) -> PreparedModel:
    policy = Settings().policy  # the committed policy and catalogue, as the API loads them
    return prepare_with_policy(load_model(small_model_dir), policy.path, policy.reason_codes)


@pytest.fixture
def api_env(
    small_model_dir: Path, redis_settings: RedisSettings, cached_table: Any, prepared_small: PreparedModel
) -> ApiEnv:
    feature_dir, ids, matrix = cached_table
    version = load_cache(redis_settings.url, redis_settings.key_prefix, feature_dir)
    return ApiEnv(api_settings(redis_settings, small_model_dir), prepared_small, ids, matrix, version)


@pytest.fixture
def client(api_env: ApiEnv) -> Iterator[TestClient]:
    with TestClient(create_app(api_env.settings)) as test_client:
        yield test_client


def expected(env: ApiEnv, row: int | None, sk_id: int, fields: dict[str, object]) -> Any:
    """decide() on the same vector the API reads from Redis (row None = unknown client)."""
    if row is None:
        cached = CachedFeatures.missing(1, env.model.schema)
    else:
        cached = CachedFeatures(
            env.matrix[row : row + 1].copy(), np.ones(1, dtype=bool), env.model.feature_version, None
        )
    decided = decide(env.model, [ScoringInput(sk_id, fields)], cached, options=DecideOptions("all", 4))
    return decided.results[0]


def assert_same(answer: dict[str, Any], want: Any) -> None:
    PredictResponse.model_validate(answer)  # the documented contract
    assert answer["sk_id_curr"] == want.sk_id_curr
    assert answer["probability_refusal"] == want.probability  # exact: JSON round-trips a float64
    assert answer["score"] == 1.0 - want.probability  # the original API's score: P(approval)
    assert answer["score"] == answer["probability_approval"]
    assert answer["probability_approval"] == pytest.approx(1.0 - want.probability, abs=1e-15)
    assert answer["decision"] == want.decision
    assert answer["threshold"] == want.threshold
    assert answer["model_version"] == want.model_version
    assert answer["feature_version"] == want.feature_version
    assert answer["policy_version"] == want.policy_version
    assert [(r["code"], r["outcome"]) for r in answer["rules"]] == [(r.code, r.outcome) for r in want.rules]
    assert [(c["code"], c["text"]) for c in answer["reason_codes"]] == [
        (c.code, c.text) for c in want.reasons
    ]
    assert [c["contribution"] for c in answer["reason_codes"]] == pytest.approx(
        [c.contribution for c in want.reasons]
    )
    got = [[r["feature"] for r in c["features"]] for c in answer["reason_codes"]]
    assert got == [[r.feature for r in c.features] for c in want.reasons]


# --- /predict ----------------------------------------------------------------------------------------
def test_predict_equals_decide_on_the_cached_vector(client: TestClient, api_env: ApiEnv) -> None:
    decisions = set()
    for row in range(0, 600, 37):
        sk_id = int(api_env.ids[row])
        response = client.post("/predict", json={"sk_id_curr": sk_id})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        answer = response.json()
        want = expected(api_env, row, sk_id, {})
        assert_same(answer, want)
        assert answer["features_found"] is True
        assert answer["features_age_s"] is not None and answer["features_age_s"] >= 0
        assert 1 <= len(answer["reason_codes"]) <= 4
        decisions.add(answer["decision"])
    assert decisions <= {"ACCORD", "REFUS", "REFER"}


def test_application_fields_override_the_cached_values(client: TestClient, api_env: ApiEnv) -> None:
    row = 5
    sk_id = int(api_env.ids[row])
    fields: dict[str, object] = {"AMT_CREDIT": 4_000_000.0, "AMT_INCOME_TOTAL": 20_000.0, "AMT_ANNUITY": None}
    answer = client.post("/predict", json={"sk_id_curr": sk_id, **fields}).json()
    assert_same(answer, expected(api_env, row, sk_id, fields))
    plain = client.post("/predict", json={"sk_id_curr": sk_id}).json()
    assert plain["score"] != answer["score"]  # the fields were really used


def test_unknown_client_is_404_without_fields_and_scored_with_them(
    client: TestClient, api_env: ApiEnv
) -> None:
    unknown = 9_999_999
    assert unknown not in set(api_env.ids.tolist())
    response = client.post("/predict", json={"sk_id_curr": unknown})
    assert response.status_code == 404
    assert response.json() == {"detail": "Client not found"}

    fields: dict[str, object] = {"AMT_CREDIT": 500_000.0, "NAME_CONTRACT_TYPE": "Cash loans"}
    response = client.post("/predict", json={"sk_id_curr": unknown, **fields})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["features_found"] is False and answer["features_age_s"] is None
    assert_same(answer, expected(api_env, None, unknown, fields))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "sk_id_curr"),
        ({"sk_id_curr": "100001"}, "sk_id_curr"),
        ({"sk_id_curr": True}, "sk_id_curr"),
        ({"sk_id_curr": 0}, "sk_id_curr"),
        ({"sk_id_curr": -3}, "sk_id_curr"),
        ({"sk_id_curr": 100001.5}, "sk_id_curr"),
        ({"sk_id_curr": 100001, "AMT_CREDIT": -1}, "AMT_CREDIT"),
        ({"sk_id_curr": 100001, "AMT_CREDIT": "1000"}, "AMT_CREDIT"),
        ({"sk_id_curr": 100001, "AMT_CREDIT": 1e12}, "AMT_CREDIT"),
        ({"sk_id_curr": 100001, "HOUR_APPR_PROCESS_START": 24}, "HOUR_APPR_PROCESS_START"),
        ({"sk_id_curr": 100001, "NAME_CONTRACT_TYPE": 3}, "NAME_CONTRACT_TYPE"),
        ({"sk_id_curr": 100001, "AMT_CREDITT": 5.0}, "AMT_CREDITT"),
        ({"sk_id_curr": 2**70}, "sk_id_curr"),  # beyond 64 bits: echoed back without failing
        ({"sk_id_curr": 100001, "AMT_CREDIT": 10**30}, "AMT_CREDIT"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["detail"]]
    assert any(loc[-1] == field for loc in locs), locs


def test_application_with_a_huge_integer_is_422_not_500(client: TestClient) -> None:
    # pydantic echoes the value in `input` and in `ctx`: both must be writable (no broker is reached)
    response = client.post("/applications", json={"sk_id_curr": -1, "schema_version": -(10**25)})
    assert response.status_code == 422, response.text
    assert {e["loc"][-1] for e in response.json()["detail"]} == {"sk_id_curr", "schema_version"}


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b"", b'{"sk_id_curr": NaN}', b'{"sk_id_curr": 1, "AMT_CREDIT": 1e999}']
)
def test_unparseable_bodies_are_422(client: TestClient, raw: bytes) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text


# --- /health and /metrics ----------------------------------------------------------------------------
def test_health_ok_and_metrics_count_requests(client: TestClient, api_env: ApiEnv) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.text
    body = HealthResponse.model_validate(response.json())
    assert response.json()["status"] == "healthy" and body.reasons == []  # the original API's word
    assert body.model_version == api_env.model.model_version
    assert body.cache_feature_version == body.model_feature_version == api_env.loaded_version

    for row in range(3):
        client.post("/predict", json={"sk_id_curr": int(api_env.ids[row])})
    client.post("/predict", json={"sk_id_curr": 9_999_999})
    text = client.get("/metrics").text
    assert 'credit_scorer_api_request_seconds_count{route="/predict",status="2xx"} 3.0' in text
    assert 'credit_scorer_api_request_seconds_count{route="/predict",status="4xx"} 1.0' in text
    assert "credit_scorer_feature_lookups_total 4.0" in text
    assert "credit_scorer_feature_cache_misses_total 1.0" in text
    assert f'model_version="{api_env.model.model_version}"' in text
    client.get("/no/such/path")
    assert 'route="other",status="4xx"' in client.get("/metrics").text


def test_health_degraded_and_predict_503_when_redis_goes_down(
    small_model_dir: Path, cached_table: Any, redis_key_prefix: str
) -> None:
    feature_dir, ids, _ = cached_table
    with RedisServer() as server:
        load_cache(server.url, redis_key_prefix, feature_dir)
        settings = api_settings(RedisSettings(url=server.url, key_prefix=redis_key_prefix), small_model_dir)
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").status_code == 200
            assert client.post("/predict", json={"sk_id_curr": int(ids[0])}).status_code == 200
            server.stop()
            response = client.get("/health")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "degraded" and body["redis_reachable"] is False
            assert any(r.startswith("Redis unreachable") and server.url[:-2] in r for r in body["reasons"])
            response = client.post("/predict", json={"sk_id_curr": int(ids[0])})
            assert response.status_code == 503
            assert "feature cache unavailable" in response.json()["detail"]


def test_health_degraded_at_a_dead_port(small_model_dir: Path) -> None:
    dead = RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.5)
    with TestClient(create_app(api_settings(dead, small_model_dir))) as client:
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["redis_reachable"] is False
        assert client.post("/predict", json={"sk_id_curr": 100001}).status_code == 503


def test_health_degraded_when_the_cache_serves_another_feature_version(
    small_model_dir: Path, redis_settings: RedisSettings, make_feature_build: Callable[..., Any]
) -> None:
    build = make_feature_build(n_clients=20, schema=other_schema(tag="_other"))
    other = load_cache(redis_settings.url, redis_settings.key_prefix, build.folder)
    model = load_model(small_model_dir)
    assert other != model.feature_version
    with TestClient(create_app(api_settings(redis_settings, small_model_dir))) as client:
        response = client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["cache_feature_version"] == other and body["feature_versions_match"] is False
        assert any("feature version mismatch" in r and model.feature_version in r for r in body["reasons"])
        response = client.post("/predict", json={"sk_id_curr": int(build.ids[0])})
        assert response.status_code == 503
        assert model.feature_version in response.json()["detail"]


def test_health_degraded_when_the_model_cannot_load(redis_settings: RedisSettings, tmp_path: Path) -> None:
    empty = tmp_path / "no-model"
    empty.mkdir()
    with TestClient(create_app(api_settings(redis_settings, empty))) as client:
        response = client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["model_loaded"] is False
        assert any(r.startswith("model not loaded") and "model.txt" in r for r in body["reasons"])
        response = client.post("/predict", json={"sk_id_curr": 100001})
        assert response.status_code == 503 and "model not loaded" in response.json()["detail"]


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/metrics", "/applications"} <= set(spec["paths"])
    assert "404" in spec["paths"]["/predict"]["post"]["responses"]
    assert client.get("/docs").status_code == 200
