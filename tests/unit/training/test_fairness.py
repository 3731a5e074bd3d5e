"""The training report's fairness text: ratios flagged below 0.8, unavailable families named, and the
train evaluate section built from the report document."""

from __future__ import annotations

import numpy as np

from feature_loader.feature_schema import FeatureSchema
from tests.fixtures.models import default_schema
from training.fairness import fairness_markdown, summary_line, training_fairness

SCHEMA = default_schema()


def parts() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """300 rows: 150 F with P(default) 0.05, 150 M with 0.05 for 100 of them and 0.5 for the rest."""
    x = np.full((300, len(SCHEMA)), np.nan, dtype=np.float32)
    x[:150, SCHEMA.index["CODE_GENDER"]] = 0
    x[150:, SCHEMA.index["CODE_GENDER"]] = 1
    p = np.full(300, 0.05)
    p[250:] = 0.5
    return {"holdout": (x, p)}


def test_approved_below_the_threshold_and_the_ratio_flagged() -> None:
    report = training_fairness(SCHEMA, parts(), threshold=0.1, min_decisions=100)
    gender = report["holdout"]["segments"]["gender"]
    assert gender["groups"]["F"]["approval_rate"] == 1.0 and gender["groups"]["M"]["approvals"] == 100
    assert gender["disparate_impact"] == 100 / 150 and gender["below_four_fifths"]
    line = summary_line(report["holdout"])
    assert line.startswith("gender 0.67 (< 0.8) · age_band n/a")  # every DAYS_BIRTH missing: unknown only
    # at threshold 0.6 everyone is approved: no gap
    assert (
        training_fairness(SCHEMA, parts(), 0.6, 100)["holdout"]["segments"]["gender"]["disparate_impact"]
        == 1.0
    )


def test_unavailable_families_are_named_in_the_text() -> None:
    narrow = FeatureSchema(fields=tuple(f for f in SCHEMA.fields if f.name != "NAME_CONTRACT_TYPE"))
    x = np.zeros((10, len(narrow)), dtype=np.float32)
    report = training_fairness(narrow, {"holdout": (x, np.zeros(10))}, 0.1, 1)
    assert "contract_type unavailable" in summary_line(report["holdout"])
    models = {"m": {"known": {"fairness": report["holdout"]}, "unknown": {"fairness": report["holdout"]}}}
    text = "\n".join(fairness_markdown(models, "m"))
    assert "| m | known | n/a | n/a | unavailable | n/a |" in text  # one group each: no ratio
    assert "| contract_type | – | – | – | – | unavailable (no NAME_CONTRACT_TYPE) |" in text
    assert fairness_markdown({"m": {"known": {}}}, "m") == []  # an older report: no section
