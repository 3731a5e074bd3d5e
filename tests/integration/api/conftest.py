"""Fixtures of the API tests: the small model's feature table, and settings pointing the API at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from credit_scorer.settings import RedisSettings, Settings
from feature_cache.loader import read_feature_table
from scoring.model import load_model
from tests.fixtures.models import write_feature_dir


def api_settings(redis: RedisSettings, model_path: Path, **api: Any) -> Settings:
    base = Settings()
    return base.model_copy(
        update={
            "redis": redis,
            "model": base.model.model_copy(update={"path": model_path}),
            "api": base.api.model_copy(update=api),
        }
    )


@pytest.fixture(scope="module")
def cached_table(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    model = load_model(small_model_dir)
    feature_dir = write_feature_dir(tmp_path_factory.mktemp("api-features"), 600, 0, model.schema)
    ids, matrix = read_feature_table(feature_dir / "features.parquet", model.schema)
    return feature_dir, ids, matrix
