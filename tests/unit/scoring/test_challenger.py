"""Champion/challenger in the pure core (scoring.challenger): the challenger decides the champion's rows on
the champion's own assembled matrix, under the same policy; another feature schema is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from credit_scorer.settings import PolicySettings
from feature_loader.feature_schema import FeatureSchema
from scoring.challenger import AGREEMENT_PAIRS, check_challenger, shadow_decide
from scoring.decide import DecideOptions, ScoringInput, decide
from scoring.exceptions import SchemaMismatchError
from scoring.features import CachedFeatures
from scoring.model import load_model
from scoring.policy_file import prepare_with_policy
from scoring.prepared import PreparedModel
from tests.fixtures.models import default_schema, synthetic_amounts_policy, synthetic_matrix

OPTIONS = DecideOptions("refusals", 4, counter_offers=True)
N = 400


def prepared(model_dir: Path, policy: Path) -> PreparedModel:
    """A model as the worker prepares it: the policy file and the committed reason catalogue."""
    return prepare_with_policy(load_model(model_dir), policy, PolicySettings().reason_codes)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_amounts_policy(tmp_path_factory.mktemp("policy") / "policy.yaml")


@pytest.fixture(scope="module")
def batch() -> tuple[list[ScoringInput], CachedFeatures]:
    """Applications carrying their event fields, and cached vectors (10 % of clients unknown)."""
    schema = default_schema()
    x, _ = synthetic_matrix(schema, N, seed=11)
    inputs = [
        ScoringInput(
            1000 + i, {f.name: f.decode(float(x[i, schema.index[f.name]])) for f in schema.event_fields}
        )
        for i in range(N)
    ]
    found = np.random.default_rng(3).random(N) > 0.1
    cached = x.copy()
    cached[~found] = np.nan
    return inputs, CachedFeatures(cached, found, schema.version, None)


def test_a_challenger_equal_to_the_champion_agrees_on_every_row_and_reuses_its_matrix(
    small_model_dir: Path, policy: Path, batch: tuple[list[ScoringInput], CachedFeatures]
) -> None:
    inputs, cached = batch
    champion = prepared(small_model_dir, policy)
    twin = prepared(small_model_dir, policy)  # the same files, prepared apart
    decided = decide(champion, inputs, cached, options=OPTIONS)

    shadow = shadow_decide(twin, decided.score, decided.features, options=OPTIONS)

    assert shadow.score.matrix is decided.score.matrix  # scored on the champion's vectors, not re-assembled
    assert [r.decision for r in shadow.score.results] == [r.decision for r in decided.results]
    assert [r.probability for r in shadow.score.results] == [r.probability for r in decided.results]
    assert [r.reasons for r in shadow.score.results] == [r.reasons for r in decided.results]
    assert sum(shadow.pairs.values()) == N and shadow.agreement == 1.0
    assert all(a == b for a, b in shadow.pairs) and set(shadow.pairs) <= set(AGREEMENT_PAIRS)
    assert len({r.decision for r in decided.results}) >= 2  # the batch is not one outcome only


def test_another_model_decides_the_same_vectors_under_the_same_policy_and_disagrees_on_some_rows(
    small_model_dir: Path,
    make_model_dir: Callable[..., Path],
    policy: Path,
    batch: tuple[list[ScoringInput], CachedFeatures],
) -> None:
    inputs, cached = batch
    champion = prepared(small_model_dir, policy)
    challenger = prepared(make_model_dir(seed=1), policy)
    assert challenger.model_version != champion.model_version
    decided = decide(champion, inputs, cached, options=OPTIONS)

    shadow = shadow_decide(challenger, decided.score, decided.features, options=OPTIONS)

    # exactly what the challenger decides on its own (same vectors, same policy, its threshold)
    alone = decide(challenger, inputs, cached, options=OPTIONS)
    np.testing.assert_array_equal(alone.score.matrix, decided.score.matrix)
    assert [(r.decision, r.probability, r.rules, r.reasons) for r in shadow.score.results] == [
        (r.decision, r.probability, r.rules, r.reasons) for r in alone.results
    ]
    assert {r.model_version for r in shadow.score.results} == {challenger.model_version}
    assert [r.sk_id_curr for r in shadow.score.results] == [r.sk_id_curr for r in decided.results]
    # the policy's knock-outs do not depend on the model: both refuse those rows by the same rule
    knocked = [i for i, r in enumerate(decided.results) if any(h.outcome == "REFUS" for h in r.rules)]
    assert knocked, "no knock-out fired: the policy is not exercised"
    for i in knocked:
        assert shadow.score.results[i].decision == "REFUS"
        assert {h.code for h in shadow.score.results[i].rules if h.outcome == "REFUS"} == {
            h.code for h in decided.results[i].rules if h.outcome == "REFUS"
        }
    # another model: other probabilities, and some decisions differ
    differ = sum(
        a.probability != b.probability for a, b in zip(decided.results, shadow.score.results, strict=True)
    )
    assert differ > N // 2
    assert 0 < shadow.agreed < N and 0.0 < shadow.agreement < 1.0
    expected = {}
    for a, b in zip(decided.results, shadow.score.results, strict=True):
        expected[a.decision, b.decision] = expected.get((a.decision, b.decision), 0) + 1
    assert shadow.pairs == expected


def test_a_challenger_on_another_feature_schema_is_refused(
    small_model_dir: Path,
    make_model_dir: Callable[..., Path],
    policy: Path,
    batch: tuple[list[ScoringInput], CachedFeatures],
) -> None:
    inputs, cached = batch
    champion = prepared(small_model_dir, policy)
    narrow = FeatureSchema(fields=tuple(f for f in default_schema().fields if f.name != "BURO_CREDIT_COUNT"))
    other = prepared(make_model_dir(schema=narrow), policy)
    decided = decide(champion, inputs, cached, options=OPTIONS)

    with pytest.raises(SchemaMismatchError, match="feature schema"):
        check_challenger(champion, other)
    with pytest.raises(SchemaMismatchError):
        shadow_decide(other, decided.score, decided.features, options=OPTIONS)
    check_challenger(champion, prepared(small_model_dir, policy))  # the same schema passes
