"""Shared pytest fixtures: paths to the real sample and factory fixtures used across test levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_scorer.settings import DEFAULT_SAMPLE_DIR

pytest_plugins = [
    "tests.fixtures.backend",
    "tests.fixtures.redis",
    "tests.fixtures.kafka",
    "tests.fixtures.postgres",
    "tests.fixtures.store",
    "tests.fixtures.view",
    "tests.fixtures.chromium",
    "tests.fixtures.models",
    "tests.fixtures.registry",
    "tests.fixtures.prometheus",
    "tests.fixtures.coverage_summary",
]

SAMPLE_FILES = (
    "application_train.csv.gz",
    "application_test.csv.gz",
    "bureau.csv.gz",
    "bureau_balance.csv.gz",
    "previous_application.csv.gz",
    "POS_CASH_balance.csv.gz",
    "installments_payments.csv.gz",
    "credit_card_balance.csv.gz",
)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The real Home Credit sample in ../shared; tests that need it skip (with the reason) outside."""
    missing = [f for f in SAMPLE_FILES if not (DEFAULT_SAMPLE_DIR / f).exists()]
    if missing:
        pytest.skip(
            f"real Home Credit sample not found at {DEFAULT_SAMPLE_DIR} (missing {', '.join(missing)}); "
            "it exists only inside this workplace's shared/ folder"
        )
    return DEFAULT_SAMPLE_DIR
