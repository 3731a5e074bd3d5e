"""scoring.model: save → load round trip, and every refusal of load_model (integrity, schema, files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import orjson
import pytest

from feature_loader.feature_schema import FeatureField, FeatureSchema
from scoring.exceptions import ModelIntegrityError, ModelLoadError, SchemaMismatchError
from scoring.model import (
    MODEL_FILE,
    REQUIRED_FILES,
    SCHEMA_FILE,
    booster_text,
    load_model,
    resolve_model_dir,
    save_model,
    sha256_bytes,
)
from scoring.model_card import MODEL_CARD_FILE, ModelCard
from tests.fixtures.models import synthetic_matrix


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_small_model_loads_verified(small_model_dir: Path, small_schema: FeatureSchema) -> None:
    model = load_model(small_model_dir, expected_schema=small_schema)
    assert model.feature_version == small_schema.version == model.card.feature_schema_version
    assert model.model_version == small_model_dir.name
    assert 0.0 < model.threshold < 1.0
    assert model.booster.num_trees() == 50
    assert list(model.booster.feature_name()) == list(small_schema.names)
    assert model.card.model_sha256 == sha256_bytes((small_model_dir / MODEL_FILE).read_bytes())


def test_round_trip_predicts_identically(tmp_path: Path, small_schema: FeatureSchema) -> None:
    x, y = synthetic_matrix(small_schema, 1500, seed=3)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 3},
        lgb.Dataset(
            x, label=y, feature_name=list(small_schema.names),
            categorical_feature=list(small_schema.categorical_names),
        ),
        num_boost_round=30,
    )  # fmt: skip
    card = _card(small_schema, booster)
    out = save_model(booster, card, small_schema, tmp_path / "m")
    loaded = load_model(out)
    x_new, _ = synthetic_matrix(small_schema, 500, seed=4)
    before = booster.predict(x_new)
    after = loaded.predict(x_new)
    assert np.array_equal(before, after)  # bit-identical, not merely close
    assert (out / MODEL_FILE).read_bytes() == booster_text(booster)
    assert not any(p.suffix in {".pkl", ".joblib"} for p in out.iterdir())


def _card(schema: FeatureSchema, booster: lgb.Booster, **overrides: object) -> ModelCard:
    doc = {
        "model_version": "20260101T0000-deadbeef",
        "created_at": "2026-01-01T00:00:00Z",
        "feature_schema_version": schema.version,
        "features": list(schema.names),
        "categorical_features": list(schema.categorical_names),
        "threshold": 0.3,
        "training_data": {"fingerprint": "x", "rows": 1, "positives": 1},
        "lightgbm_version": lgb.__version__,
        **overrides,
    }
    return ModelCard.model_validate(doc)


def test_tampered_model_file_is_refused(small_model_dir: Path, tmp_path: Path) -> None:
    model_dir = _copy(small_model_dir, tmp_path)
    text = (model_dir / MODEL_FILE).read_text()
    # change one leaf value: still a valid LightGBM model, but not the one the card vouches for
    i = text.index("leaf_value=") + len("leaf_value=")
    tampered = text[:i] + ("9" if text[i] != "9" else "8") + text[i + 1 :]
    (model_dir / MODEL_FILE).write_text(tampered)
    lgb.Booster(model_str=tampered)  # the tampered file itself parses fine
    with pytest.raises(ModelIntegrityError, match=r"model\.txt: sha256 .* does not match"):
        load_model(model_dir)


def _other_schema(schema: FeatureSchema) -> FeatureSchema:
    renamed = FeatureField(name="AMT_CREDIT_RENAMED", source=schema.fields[0].source)
    return FeatureSchema(fields=(renamed, *schema.fields[1:]))


def test_schema_file_not_the_cards_is_refused(small_model_dir: Path, tmp_path: Path) -> None:
    model_dir = _copy(small_model_dir, tmp_path)
    schema = FeatureSchema.load(model_dir / SCHEMA_FILE)
    _other_schema(schema).save(model_dir / SCHEMA_FILE)
    with pytest.raises(SchemaMismatchError, match=f"model card says feature schema {schema.version}"):
        load_model(model_dir)


def test_booster_feature_order_differing_from_schema_is_refused(
    small_model_dir: Path, tmp_path: Path
) -> None:
    """A consistent card + schema whose model.txt was trained on another column order."""
    model_dir = _copy(small_model_dir, tmp_path)
    schema = FeatureSchema.load(model_dir / SCHEMA_FILE)
    names = list(schema.names)
    names[0], names[1] = names[1], names[0]
    x, y = synthetic_matrix(schema, 400, seed=1)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1},
        lgb.Dataset(x, label=y, feature_name=names),
        num_boost_round=3,
    )
    text = booster_text(booster)
    (model_dir / MODEL_FILE).write_bytes(text)
    card = ModelCard.load(model_dir / MODEL_CARD_FILE)
    card.model_copy(update={"model_sha256": sha256_bytes(text)}).save(model_dir / MODEL_CARD_FILE)
    with pytest.raises(SchemaMismatchError, match="order differs from position 0: expected 'AMT_CREDIT'"):
        load_model(model_dir)


def test_card_features_differing_from_schema_are_refused(small_model_dir: Path, tmp_path: Path) -> None:
    model_dir = _copy(small_model_dir, tmp_path)
    doc = orjson.loads((model_dir / MODEL_CARD_FILE).read_bytes())
    doc["features"] = doc["features"][:-1]
    (model_dir / MODEL_CARD_FILE).write_bytes(orjson.dumps(doc))
    with pytest.raises(SchemaMismatchError, match="missing \\['EXT_SOURCE_MEAN'\\]"):
        load_model(model_dir)


def test_unexpected_schema_is_refused(small_model_dir: Path, small_schema: FeatureSchema) -> None:
    expected = _other_schema(small_schema)
    with pytest.raises(SchemaMismatchError, match="missing \\['AMT_CREDIT_RENAMED'\\]") as info:
        load_model(small_model_dir, expected_schema=expected)
    assert expected.version in str(info.value) and small_schema.version in str(info.value)


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_missing_file_is_refused(small_model_dir: Path, tmp_path: Path, name: str) -> None:
    model_dir = _copy(small_model_dir, tmp_path)
    (model_dir / name).unlink()
    with pytest.raises(ModelLoadError, match=f"is missing {name}"):
        load_model(model_dir)


def test_missing_directory_and_invalid_card_are_refused(small_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model directory not found"):
        load_model(tmp_path / "nope")
    model_dir = _copy(small_model_dir, tmp_path)
    (model_dir / MODEL_CARD_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"model_card\.json: invalid model card"):
        load_model(model_dir)


def test_save_refuses_a_card_for_another_schema(small_model_dir: Path, tmp_path: Path) -> None:
    model = load_model(small_model_dir)
    with pytest.raises(SchemaMismatchError, match="model card is for feature schema"):
        save_model(model.booster, model.card, _other_schema(model.schema), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_resolve_model_dir(make_model_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    models = tmp_path / "models"
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model_dir(models)
    models.mkdir()
    (models / "junk").mkdir()  # no card: never chosen
    with pytest.raises(ModelLoadError, match="no model under"):
        resolve_model_dir(models)
    older, newer = make_model_dir(), make_model_dir(seed=1)
    for src, stamp in ((older, "2026-01-01T00:00:00Z"), (newer, "2026-01-02T00:00:00Z")):
        dst = models / f"m-{stamp[:10]}"
        shutil.copytree(src, dst)
        doc = orjson.loads((dst / MODEL_CARD_FILE).read_bytes())
        doc["created_at"] = stamp
        (dst / MODEL_CARD_FILE).write_bytes(orjson.dumps(doc))
    assert resolve_model_dir(models).name == "m-2026-01-02"
    assert resolve_model_dir(models, models / "m-2026-01-01") == models / "m-2026-01-01"
    with pytest.raises(ModelLoadError, match="not found"):
        resolve_model_dir(models, models / "absent")
