"""The API serving the registry's ``champion`` answers with a newly promoted version, no restart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from credit_scorer.model_source import open_registry
from credit_scorer.settings import RedisSettings
from devtools.harness import load_cache
from scoring.model import load_model
from tests.fixtures.registry import MakeRegistrySettings, RegistryTemplate
from tests.integration.api.conftest import api_settings
from tests.polling import wait_until

pytestmark = pytest.mark.integration


async def test_predict_moves_to_the_promoted_version(
    make_registry_settings: MakeRegistrySettings,
    registry_template: RegistryTemplate,
    redis_settings: RedisSettings,
    cached_table: Any,
) -> None:
    feature_dir, ids, _ = cached_table
    load_cache(redis_settings.url, redis_settings.key_prefix, feature_dir)
    base = api_settings(redis_settings, registry_template.model_dirs["1"])
    settings = make_registry_settings(base, watch_interval_s=0.05)
    registry = open_registry(settings)
    registry.set_alias("champion", "1")
    old, new = (load_model(registry_template.model_dirs[v]).model_version for v in ("1", "2"))
    body = {"sk_id_curr": int(ids[0])}
    with TestClient(create_app(settings)) as client:
        assert client.post("/predict", json=body).json()["model_version"] == old
        await asyncio.to_thread(registry.set_alias, "champion", "2")
        # the swap happens on the app's loop: each request gives it a turn
        await wait_until(
            lambda: client.post("/predict", json=body).json()["model_version"] == new, 60, "version 2"
        )
        assert client.get("/health").json()["model_version"] == new
        metrics = client.get("/metrics").text
        assert 'registry_version="2"' in metrics and 'model_swaps_total{result="swapped"} 1.0' in metrics
