"""Approval rates by segment and the disparate-impact ratio (pure), and the worker's observer."""

from __future__ import annotations

import numpy as np
import pytest

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import FairnessSettings
from scoring.fairness import FairnessTally, segments_for
from scoring.results import BatchScore, ScoreResult
from stream_app.fairness_observer import FairnessObserver
from tests.fixtures.models import default_schema

SCHEMA = default_schema()
NAN = float("nan")


def rows(*values: dict[str, float]) -> np.ndarray:
    x = np.full((len(values), len(SCHEMA)), np.nan, dtype=np.float32)
    for i, v in enumerate(values):
        for name, value in v.items():
            x[i, SCHEMA.index[name]] = value
    return x


def test_groups_are_read_from_the_assembled_matrix() -> None:
    by_name = {s.name: s for s in segments_for(SCHEMA)}
    assert set(by_name) == {"gender", "contract_type", "age_band", "income_band"}
    x = rows(
        {"CODE_GENDER": 0, "DAYS_BIRTH": -25 * 365.25, "AMT_INCOME_TOTAL": 99_999},
        {"CODE_GENDER": 1, "DAYS_BIRTH": -45 * 365.25 - 1, "AMT_INCOME_TOTAL": 100_000},
        {"CODE_GENDER": NAN, "DAYS_BIRTH": -70 * 365.25, "AMT_INCOME_TOTAL": 350_000},
        {"CODE_GENDER": 7, "DAYS_BIRTH": NAN, "AMT_INCOME_TOTAL": NAN},  # a level beyond the schema
    )

    def groups(segment: str) -> list[str]:
        s = by_name[segment]
        return [s.groups[c] for c in s.codes(x)]

    assert groups("gender") == ["F", "M", "unknown", "unknown"]
    assert groups("age_band") == ["<30", "45-59", "60+", "unknown"]
    assert groups("income_band") == ["<100k", "100-200k", "300k+", "unknown"]
    assert groups("contract_type") == ["unknown"] * 4


def test_disparate_impact_is_lowest_over_highest_approval_rate_of_groups_with_enough_decisions() -> None:
    tally = FairnessTally(segments_for(SCHEMA))
    genders = [0] * 10 + [1] * 10 + [2] * 3  # F, M, XNA (too few to count at min 5)
    x = rows(*({"CODE_GENDER": g} for g in genders))
    approved = np.array([True] * 8 + [False] * 2 + [True] * 5 + [False] * 5 + [False] * 3)
    probs = np.linspace(0.0, 0.22, len(genders))
    tally.fold(x, approved, probs)
    assert tally.approval_rate("gender")[:3].tolist() == [0.8, 0.5, 0.0]
    assert tally.mean_probability("gender")[0] == pytest.approx(probs[:10].mean())
    assert tally.disparate_impact("gender", min_decisions=5) == pytest.approx(0.5 / 0.8)
    assert tally.disparate_impact("gender", min_decisions=11) is None  # one group at most
    assert tally.disparate_impact("contract_type", min_decisions=1) is None  # everyone unknown


def test_the_observer_exports_counts_rates_and_the_ratio() -> None:
    metrics = ScorerMetrics()
    observer = FairnessObserver(
        FairnessTally(segments_for(SCHEMA)),
        metrics,
        FairnessSettings(min_group_decisions=2, publish_every_s=0),
    )
    x = rows({"CODE_GENDER": 0}, {"CODE_GENDER": 0}, {"CODE_GENDER": 1}, {"CODE_GENDER": 1})
    decisions = ["ACCORD", "ACCORD", "ACCORD", "REFUS"]
    results = [ScoreResult(i, 0.1, d, 0.5, "m", "f", True, None, ()) for i, d in enumerate(decisions)]
    observer(BatchScore(results, 0.0, 0.0, x, np.full(4, 0.1)))
    value = metrics.registry.get_sample_value
    assert (
        value(
            "credit_scorer_segment_decisions_total", {"segment": "gender", "group": "M", "decision": "REFUS"}
        )
        == 1
    )
    assert value("credit_scorer_segment_approval_rate", {"segment": "gender", "group": "M"}) == 0.5
    assert value("credit_scorer_disparate_impact_ratio", {"segment": "gender"}) == 0.5
    assert value("credit_scorer_disparate_impact_ratio", {"segment": "age_band"}) is None  # all unknown


def test_the_observer_counts_every_segment_group_and_decision_as_a_row_by_row_count() -> None:
    """Batches of every decision (REFER included) and groups (unknown included): the counter's
    samples and the tally equal a plain count of the rows, batch after batch."""
    rng = np.random.default_rng(7)
    metrics = ScorerMetrics()
    segments = segments_for(SCHEMA)
    observer = FairnessObserver(FairnessTally(segments), metrics, FairnessSettings(publish_every_s=0))
    expected: dict[tuple[str, str, str], int] = {}
    folded = FairnessTally(segments)
    for size in (1, 8, 37):
        gender = rng.choice([0.0, 1.0, 2.0, NAN], size)
        age = rng.choice([-20 * 365.25, -50 * 365.25, -70 * 365.25, NAN], size)
        x = rows(*({"CODE_GENDER": g, "DAYS_BIRTH": a} for g, a in zip(gender, age, strict=True)))
        decisions = rng.choice(["ACCORD", "REFUS", "REFER"], size).tolist()
        probs = rng.random(size)
        results = [ScoreResult(i, p, d, 0.5, "m", "f", True, None, ()) for i, (d, p) in enumerate(
            zip(decisions, probs.tolist(), strict=True))]  # fmt: skip
        observer(BatchScore(results, 0.0, 0.0, x, probs))
        folded.fold(x, np.array(decisions) == "ACCORD", probs)
        for s in segments:
            for code, decision in zip(s.codes(x).tolist(), decisions, strict=True):
                key = (s.name, s.groups[code], decision)
                expected[key] = expected.get(key, 0) + 1
    value = metrics.registry.get_sample_value
    for (segment, group, decision), count in expected.items():
        labels = {"segment": segment, "group": group, "decision": decision}
        assert value("credit_scorer_segment_decisions_total", labels) == count
    assert sum(expected.values()) == 46 * len(segments)
    for s in segments:
        assert observer.tally.decisions[s.name].tolist() == folded.decisions[s.name].tolist()
        assert observer.tally.approvals[s.name].tolist() == folded.approvals[s.name].tolist()
        assert observer.tally.pd_sum[s.name] == pytest.approx(folded.pd_sum[s.name])
