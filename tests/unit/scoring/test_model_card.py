"""scoring.model_card: the reference shape contract and JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from scoring.model import load_model
from scoring.model_card import ModelCard


def test_card_json_round_trip(small_model_dir: Path) -> None:
    card = load_model(small_model_dir).card
    assert ModelCard.from_json_bytes(card.to_json_bytes()) == card
    assert set(card.confusion_matrix) == {"tn", "fp", "fn", "tp"}
    assert card.training_data["rows"] == card.training_data.rows == 2000


def test_reference_has_the_contract_shape(small_model_dir: Path) -> None:
    card = load_model(small_model_dir).card
    ref = card.reference
    assert ref is not None and set(ref) == {"score", "features"}
    assert 1 <= len(ref["features"]) <= 10
    assert set(ref["features"]) <= set(card.features)
    for hist in [ref["score"], *ref["features"].values()]:
        assert set(hist) == {"edges", "proportions", "missing"}
        assert len(hist["proportions"]) == len(hist["edges"]) + 1
        assert sorted(set(hist["edges"])) == hist["edges"]
        assert sum(hist["proportions"]) == pytest.approx(1.0)
        assert 0.0 <= hist["missing"] <= 1.0
    assert ref["score"]["missing"] == 0.0
    if "EXT_SOURCE_1" in ref["features"]:  # ~40 % missing in the fixture data
        assert 0.3 < ref["features"]["EXT_SOURCE_1"]["missing"] < 0.5


@pytest.mark.parametrize(
    "reference, message",
    [
        ({"score": {"edges": [0.1], "proportions": [1.0]}, "features": {}}, "1 edges but 1 proportions"),
        ({"score": {"edges": [0.2, 0.1], "proportions": [0.3, 0.3, 0.4]}, "features": {}}, "increasing"),
        ({"score": {"edges": [0.1], "proportions": [0.5, 0.4]}, "features": {}}, "sum to"),
        ({"score": {"edges": [], "proportions": [1.0]}}, "exactly the keys"),
    ],
)
def test_bad_reference_is_rejected(small_model_dir: Path, reference: dict, message: str) -> None:
    doc = load_model(small_model_dir).card.model_dump(mode="json")
    doc["reference"] = reference
    with pytest.raises(ValidationError, match=message):
        ModelCard.model_validate(doc)
