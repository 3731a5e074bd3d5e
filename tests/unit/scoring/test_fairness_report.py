"""The fairness report (pure): known counts give known rates, ratios and flags; absent columns are
"unavailable"; stored group names fold back to the same figures."""

from __future__ import annotations

import numpy as np
import pytest

from feature_loader.feature_schema import FeatureSchema
from scoring.fairness import (
    FairnessTally,
    fairness_report,
    group_labels,
    labelled_segments,
    segments_for,
    tally_report,
)
from tests.fixtures.models import default_schema

SCHEMA = default_schema()


def frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """200 rows: 100 F (80 approved), 100 M (60 approved); ages 25 / 50; income unknown for 10."""
    x = np.full((200, len(SCHEMA)), np.nan, dtype=np.float32)
    x[:100, SCHEMA.index["CODE_GENDER"]] = 0
    x[100:, SCHEMA.index["CODE_GENDER"]] = 1
    x[:, SCHEMA.index["DAYS_BIRTH"]] = np.where(np.arange(200) % 2 == 0, -25 * 365.25, -50 * 365.25)
    x[:, SCHEMA.index["NAME_CONTRACT_TYPE"]] = 0
    x[10:, SCHEMA.index["AMT_INCOME_TOTAL"]] = 150_000.0
    approved = np.zeros(200, dtype=bool)
    approved[:80] = True  # F: 80 / 100
    approved[100:160] = True  # M: 60 / 100
    probabilities = np.where(approved, 0.05, 0.30)
    return x, approved, probabilities


def test_known_counts_give_known_rates_ratios_and_flags() -> None:
    x, approved, p = frame()
    report = fairness_report(SCHEMA, x, approved, p, min_decisions=50)
    assert report["rows"] == 200 and report["min_group_decisions"] == 50
    gender = report["segments"]["gender"]
    assert gender["status"] == "ok" and set(gender["groups"]) == {"F", "M"}
    assert gender["groups"]["F"] == {
        "decisions": 100,
        "approvals": 80,
        "approval_rate": 0.8,
        "mean_probability": pytest.approx(0.8 * 0.05 + 0.2 * 0.30),
    }
    assert gender["groups"]["M"]["approval_rate"] == 0.6
    assert gender["disparate_impact"] == pytest.approx(0.6 / 0.8)
    assert gender["below_four_fifths"] is True  # 0.75 < 0.8
    age = report["segments"]["age_band"]
    # even rows are 25, odd 50: F has 40 + 40 approvals split evenly, M 30 + 30
    assert age["groups"]["<30"]["approvals"] == age["groups"]["45-59"]["approvals"] == 70
    assert age["disparate_impact"] == 1.0 and age["below_four_fifths"] is False
    contract = report["segments"]["contract_type"]
    assert set(contract["groups"]) == {"Cash loans"}
    assert contract["disparate_impact"] is None and contract["below_four_fifths"] is None  # one group
    income = report["segments"]["income_band"]
    assert income["groups"]["unknown"]["decisions"] == 10 and income["groups"]["100-200k"]["decisions"] == 190
    assert income["disparate_impact"] is None  # unknown is never a group to compare


def test_min_decisions_keeps_small_groups_out_of_the_ratio() -> None:
    x, approved, p = frame()
    x[:95, SCHEMA.index["CODE_GENDER"]] = 1  # F keeps 5 rows, all approved
    report = fairness_report(SCHEMA, x, approved, p, min_decisions=10)
    assert report["segments"]["gender"]["groups"]["F"]["decisions"] == 5
    assert report["segments"]["gender"]["disparate_impact"] is None


def test_a_family_whose_column_is_absent_is_unavailable() -> None:
    narrow = FeatureSchema(
        fields=tuple(f for f in SCHEMA.fields if f.name not in ("CODE_GENDER", "DAYS_BIRTH"))
    )
    x = np.zeros((4, len(narrow)), dtype=np.float32)
    report = fairness_report(narrow, x, np.ones(4, dtype=bool), np.zeros(4), min_decisions=1)
    for family, column in (("gender", "CODE_GENDER"), ("age_band", "DAYS_BIRTH")):
        assert report["segments"][family] == {
            "column": column,
            "status": "unavailable",
            "groups": {},
            "disparate_impact": None,
            "below_four_fifths": None,
        }
    assert report["segments"]["income_band"]["status"] == "ok"
    assert list(report["segments"]) == ["gender", "age_band", "contract_type", "income_band"]


def test_stored_group_names_fold_back_to_the_same_figures() -> None:
    x, approved, p = frame()
    direct = fairness_report(SCHEMA, x, approved, p, min_decisions=50)
    labels = {s.name: group_labels(s, x) for s in segments_for(SCHEMA)}
    labels["gender"][3] = None  # a row stored without its group counts as unknown
    labels.pop("contract_type")
    labels["contract_type"] = [None] * 200  # the column was not in the model's schema
    segments, codes = labelled_segments(labels)
    assert {s.name for s in segments} == {"gender", "age_band", "income_band"}
    tally = FairnessTally(segments)
    tally.fold(codes, approved, p)
    folded = tally_report(tally, 50)
    assert folded["segments"]["contract_type"]["status"] == "unavailable"
    for family in ("age_band", "income_band"):
        assert folded["segments"][family] == direct["segments"][family]
    assert folded["segments"]["gender"]["groups"]["unknown"]["decisions"] == 1
    assert folded["segments"]["gender"]["groups"]["F"]["decisions"] == 99
