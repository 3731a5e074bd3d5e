"""Counter-offers (scoring.counter_offer) on the fixture model, and through decide and the record.

The fixture's risk grows with the credit/income ratio, so smaller loans get accepted: a counter-offer
must be what deciding the application again at that amount (annuity scaled) gives, the largest of the
grid that is accepted, and within what the acceptance predicate allows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from schemas.events import Decision
from scoring.counter_offer import STEPS, Candidates, counter_offers
from scoring.decide import DecideOptions, ScoringInput, decide
from scoring.features import CachedFeatures
from scoring.model import load_model
from scoring.prepared import PreparedModel
from tests.fixtures.models import synthetic_matrix

OFFERS = DecideOptions(counter_offers=True)


@pytest.fixture(scope="module")
def model(small_model_dir: Path) -> PreparedModel:
    return PreparedModel(load_model(small_model_dir))


@pytest.fixture(scope="module")
def batch(model: PreparedModel) -> tuple[np.ndarray, list[ScoringInput], CachedFeatures]:
    x, _ = synthetic_matrix(model.schema, 600, seed=11)
    inputs = [ScoringInput(i, {}) for i in range(len(x))]
    return x, inputs, CachedFeatures(x, np.ones(len(x), bool), model.feature_version, None)


def _offers(
    model: PreparedModel, x: np.ndarray, rows: np.ndarray, accept: Callable[..., np.ndarray] | None = None
) -> list:  # type: ignore[type-arg]
    calls: list[int] = []

    def score(m: np.ndarray, source: np.ndarray) -> np.ndarray:
        calls.append(len(m))
        raw = model.forest.score(m)[0] if model.forest else model.booster.predict(m)
        return model.calibrator.apply(raw)  # decide compares the calibrated probability

    out = counter_offers(x, rows, model.schema, model.assembler.derive, score, model.threshold, accept)
    assert len(calls) <= 1  # every candidate of every row in one batched call
    return out


def test_offers_are_what_deciding_again_gives(model: PreparedModel, batch: tuple) -> None:  # type: ignore[type-arg]
    x, inputs, cached = batch
    decided = decide(model, inputs, cached, options=DecideOptions(counter_offers=False)).results
    refused = np.flatnonzero([r.decision == "REFUS" for r in decided])
    offers = _offers(model, x, refused)
    made = [(int(i), o) for i, o in zip(refused, offers, strict=True) if o is not None]
    assert len(made) >= 5 and len(made) < len(refused)  # some refusals have one, some not
    j_credit, j_annuity, j_goods = (
        model.schema.index[n] for n in ("AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE")
    )
    again_inputs = [
        ScoringInput(i, {"AMT_CREDIT": o.amt_credit, "AMT_ANNUITY": o.amt_annuity}) for i, o in made
    ]
    again_cached = CachedFeatures(
        x[[i for i, _ in made]], np.ones(len(made), bool), model.feature_version, None
    )
    again = decide(model, again_inputs, again_cached, options=DecideOptions(counter_offers=False)).score
    for (i, offer), result in zip(made, again.results, strict=True):
        asked, annuity = float(x[i, j_credit]), float(x[i, j_annuity])
        assert offer.amt_credit <= 0.95 * asked and offer.amt_credit == int(offer.amt_credit)
        assert offer.amt_annuity == pytest.approx(offer.amt_credit * annuity / asked, abs=0.006)
        assert result.decision == "ACCORD" and result.probability == offer.probability_default
    assert (again.matrix[:, j_goods] == x[[i for i, _ in made], j_goods]).all()  # goods price unchanged
    # the largest accepted step: the step above each offer is refused
    for i, offer in made:
        step = next(k for k, s in enumerate(STEPS) if np.floor(float(x[i, j_credit]) * s) == offer.amt_credit)
        if step:
            bigger = np.floor(float(x[i, j_credit]) * STEPS[step - 1])
            above = _offers(model, x, np.array([i]), lambda c, b=bigger: c["AMT_CREDIT"] >= b)[0]
            assert above is None


def test_accept_predicate_limits_offers(model: PreparedModel, batch: tuple) -> None:  # type: ignore[type-arg]
    x, inputs, cached = batch
    refused = np.flatnonzero(
        [r.decision == "REFUS" for r in decide(model, inputs, cached, options=OFFERS).results]
    )
    asked = x[refused, model.schema.index["AMT_CREDIT"]].astype(np.float64)

    def at_most_half(c: Candidates) -> np.ndarray:
        assert {"AMT_CREDIT", "AMT_ANNUITY", "row", "CREDIT_INCOME_RATIO"} <= set(c)
        return c["AMT_CREDIT"] <= 0.5 * asked[c["row"]]

    limited = _offers(model, x, refused, at_most_half)
    assert any(o is not None for o in limited)
    assert all(o is None or o.amt_credit <= 0.5 * a for o, a in zip(limited, asked, strict=True))
    assert _offers(model, x, refused, lambda c: np.zeros(len(c["row"]), bool)) == [None] * len(refused)


def test_no_offer_without_a_usable_amount(model: PreparedModel, batch: tuple) -> None:  # type: ignore[type-arg]
    x = batch[0].copy()
    j_credit, j_annuity = model.schema.index["AMT_CREDIT"], model.schema.index["AMT_ANNUITY"]
    x[0, j_credit], x[1, j_credit], x[2, j_annuity] = np.nan, 0.0, np.nan
    assert _offers(model, x, np.array([0, 1, 2])) == [None, None, None]
    assert _offers(model, x, np.array([], dtype=np.int64)) == []


def test_decide_puts_offers_on_refusals_and_in_the_record(model: PreparedModel, batch: tuple) -> None:  # type: ignore[type-arg]
    _, inputs, cached = batch
    results = decide(model, inputs, cached, options=OFFERS).results
    with_offer = [r for r in results if r.counter_offer is not None]
    assert with_offer and all(r.decision == "REFUS" for r in with_offer)
    assert all(r.counter_offer is None for r in decide(model, inputs, cached).results)  # off by default
    from schemas.events import LoanApplication
    from scoring.decision import StageTimings, build_decision, decision_batch_bytes

    r = with_offer[0]
    app = LoanApplication.model_validate(
        {
            "application_id": "a1",
            "event_id": "e1",
            "sk_id_curr": r.sk_id_curr,
            "event_time": "2026-01-01T00:00:00Z",
        }
    )
    timings = StageTimings(
        consumed_at=1.8e9, features_s=0.0, inference_s=0.0, reasons_s=0.0, decided_at=1.8e9
    )
    record = Decision.model_validate_json(decision_batch_bytes([app], [r], timings)[0])
    assert record.schema_version == 2 and record.counter_offer is not None
    assert record.counter_offer.amt_credit == r.counter_offer.amt_credit  # type: ignore[union-attr]
    assert record == build_decision(app, r, timings)


def test_partial_rescoring_gives_the_same_offers(model: PreparedModel, batch: tuple) -> None:  # type: ignore[type-arg]
    """decide routes candidates only through the trees that split on what they change: the offers are
    those of routing them through the whole forest, bit for bit."""
    _, inputs, cached = batch
    assert model.offer_forest is not None and 0 < model.offer_forest.routed.size < model.forest.n_trees  # type: ignore[union-attr]
    partial = [r.counter_offer for r in decide(model, inputs, cached, options=OFFERS).results]
    whole = PreparedModel(model.model)
    whole.offer_forest = None
    assert partial == [r.counter_offer for r in decide(whole, inputs, cached, options=OFFERS).results]
    assert any(o is not None for o in partial)
