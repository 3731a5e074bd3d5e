"""The decision policy (scoring.policy): each knock-out and REFER rule of the committed policy on rows
built to sit on either side of its limit, the precedence knock-out > REFER > model, and the binding to a
model's features."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from feature_loader.build import feature_schema
from feature_loader.feature_schema import FeatureSchema
from scoring.exceptions import PolicyBindError
from scoring.policy import LABELS, Policy, bind_policy
from scoring.policy_file import load_policy
from tests.fixtures.schemas import make_schema

THRESHOLD = 0.3
# a row no rule touches: 40 years old, income 100k, annuity 20 %, credit 1.1 x goods
BASE = {
    "DAYS_BIRTH": -40 * 365.25,
    "AMT_INCOME_TOTAL": 100_000.0,
    "AMT_ANNUITY": 20_000.0,
    "AMT_CREDIT": 220_000.0,
    "AMT_GOODS_PRICE": 200_000.0,
}


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    return make_schema()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()  # the committed policy


def rows(schema: FeatureSchema, *changes: dict[str, float]) -> np.ndarray:
    """One float32 row per change, every other feature NaN, BASE's values unless changed."""
    m = np.full((len(changes), len(schema)), np.nan, dtype=np.float32)
    for i, change in enumerate(changes):
        for name, value in {**BASE, **change}.items():
            m[i, schema.index[name]] = value
    return m


def evaluate(
    policy: Policy,
    schema: FeatureSchema,
    matrix: np.ndarray,
    *,
    p: float = 0.1,
    found: bool = True,
    age: float | None = 60.0,
    card: Any = None,
) -> list[tuple[str, list[str]]]:
    bound = bind_policy(policy, schema, card)
    n = matrix.shape[0]
    out = bound.evaluate(matrix, np.full(n, p), THRESHOLD, np.full(n, found), age)
    hits = out.hits(bound)
    return [(LABELS[lab], [h.code for h in hits.get(i, ())]) for i, lab in enumerate(out.labels.tolist())]


@pytest.mark.parametrize(
    ("code", "fires", "holds", "also"),
    [
        ("KO_AGE_MIN", {"DAYS_BIRTH": -17.9 * 365.25}, {"DAYS_BIRTH": -18.01 * 365.25}, []),
        ("KO_AGE_MAX", {"DAYS_BIRTH": -68.1 * 365.25}, {"DAYS_BIRTH": -67.9 * 365.25}, []),
        # a zero income also makes annuity/income infinite
        ("KO_INCOME_NOT_POSITIVE", {"AMT_INCOME_TOTAL": 0.0}, {"AMT_INCOME_TOTAL": 1.0, "AMT_ANNUITY": 0.5},
         ["KO_ANNUITY_INCOME"]),
        ("KO_ANNUITY_INCOME", {"AMT_ANNUITY": 60_001.0}, {"AMT_ANNUITY": 60_000.0}, []),
        ("KO_CREDIT_GOODS", {"AMT_CREDIT": 300_001.0}, {"AMT_CREDIT": 300_000.0}, []),
    ],
)  # fmt: skip
def test_each_knock_out_refuses_past_its_limit_only(
    policy: Policy,
    schema: FeatureSchema,
    code: str,
    fires: dict[str, float],
    holds: dict[str, float],
    also: list[str],
) -> None:
    got = evaluate(policy, schema, rows(schema, fires, holds))
    assert got[0] == ("REFUS", [code, *also])  # the model says ACCORD (p = 0.1): the rule decides
    assert got[1] == ("ACCORD", [])


def test_a_missing_value_never_fires_a_knock_out(policy: Policy, schema: FeatureSchema) -> None:
    nan = float("nan")
    got = evaluate(policy, schema, rows(schema, {"AMT_GOODS_PRICE": nan, "AMT_CREDIT": 1e9}))
    assert got == [("ACCORD", [])]  # credit/goods unknown (revolving loans have no goods price)


def test_band_around_the_threshold_refers(policy: Policy, schema: FeatureSchema) -> None:
    band = policy.refer.band
    assert band is not None
    m = rows(schema, {})
    low, high = THRESHOLD - band.below, THRESHOLD + band.above
    assert evaluate(policy, schema, m, p=low) == [("REFER", ["RF_BAND"])]  # the lower edge is in
    assert evaluate(policy, schema, m, p=high - 1e-9) == [("REFER", ["RF_BAND"])]
    assert evaluate(policy, schema, m, p=np.nextafter(low, 0)) == [("ACCORD", [])]
    assert evaluate(policy, schema, m, p=high) == [("REFUS", [])]  # the upper edge is the model's


def test_unknown_client_refers_when_the_path_is_weak(policy: Policy, schema: FeatureSchema) -> None:
    m = rows(schema, {})
    assert policy.refer.unknown_client is not None and policy.refer.unknown_client.weak
    assert evaluate(policy, schema, m, found=False, age=None) == [("REFER", ["RF_UNKNOWN_CLIENT"])]
    assert evaluate(policy, schema, m, found=True) == [("ACCORD", [])]
    # the model card says the path is not weak (a dict or an object): the card wins over the policy
    for card in ({"weak": False}, SimpleNamespace(weak=False)):
        model_card = SimpleNamespace(unknown_client_path=card)
        assert evaluate(policy, schema, m, found=False, card=model_card) == [("ACCORD", [])]
    not_weak = policy.refer.unknown_client.model_copy(update={"weak": False})
    strict = policy.model_copy(update={"refer": policy.refer.model_copy(update={"unknown_client": not_weak})})
    weak_card = SimpleNamespace(unknown_client_path={"weak": True})
    assert evaluate(strict, schema, m, found=False) == [("ACCORD", [])]
    assert evaluate(strict, schema, m, found=False, card=weak_card) == [("REFER", ["RF_UNKNOWN_CLIENT"])]


def test_stale_cached_features_refer(policy: Policy, schema: FeatureSchema) -> None:
    stale = policy.refer.stale_features
    assert stale is not None
    m = rows(schema, {})
    assert evaluate(policy, schema, m, age=stale.max_age_s + 1) == [("REFER", ["RF_STALE_FEATURES"])]
    assert evaluate(policy, schema, m, age=stale.max_age_s) == [("ACCORD", [])]
    assert evaluate(policy, schema, m, age=None) == [("ACCORD", [])]  # load time unknown


@pytest.mark.parametrize("name", ["AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "DAYS_BIRTH"])
def test_a_missing_critical_field_refers(policy: Policy, schema: FeatureSchema, name: str) -> None:
    got = evaluate(policy, schema, rows(schema, {name: float("nan")}))
    assert got == [("REFER", ["RF_MISSING_FIELDS"])]


def test_knock_out_beats_refer_beats_the_model_and_every_rule_is_recorded(
    policy: Policy, schema: FeatureSchema
) -> None:
    m = rows(schema, {"AMT_ANNUITY": 90_000.0, "DAYS_BIRTH": -70 * 365.25}, {"AMT_CREDIT": float("nan")}, {})
    bound = bind_policy(policy, schema)
    probabilities = np.array([0.01, 0.9, 0.9])
    out = bound.evaluate(m, probabilities, THRESHOLD, np.array([False, True, True]), 10.0)
    hits = out.hits(bound)
    assert [LABELS[x] for x in out.labels] == ["REFUS", "REFER", "REFUS"]
    assert [h.code for h in hits[0]] == ["KO_AGE_MAX", "KO_ANNUITY_INCOME", "RF_UNKNOWN_CLIENT"]
    assert [h.outcome for h in hits[0]] == ["REFUS", "REFUS", "REFER"]
    assert [h.code for h in hits[1]] == ["RF_MISSING_FIELDS"] and 2 not in hits
    assert all(h.text for h in bound.hits)


def test_a_rule_on_a_field_the_model_lacks_is_refused_naming_rule_and_field(policy: Policy) -> None:
    schema = FeatureSchema.model_validate(
        {"fields": [f.model_dump() for f in make_schema().fields if f.name != "AMT_GOODS_PRICE"]}
    )
    with pytest.raises(
        PolicyBindError, match=r"rule KO_CREDIT_GOODS: per 'AMT_GOODS_PRICE' is not a feature"
    ):
        bind_policy(policy, schema)


def test_the_committed_policy_binds_to_the_feature_build_schema(policy: Policy) -> None:
    bound = bind_policy(policy, feature_schema())
    assert bound.version == policy.version and len(bound.hits) == 9
    assert len({h.code for h in bound.hits}) == 9
