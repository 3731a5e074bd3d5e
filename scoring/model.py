"""Model directory I/O: save a trained booster with its card and schema, load it back *verified*.

A model directory holds ``model.txt`` (LightGBM's native text format — never pickle/joblib),
``model_card.json`` (:class:`scoring.model_card.ModelCard`, carrying the sha256 of model.txt) and
``feature_schema.json`` (:class:`feature_loader.feature_schema.FeatureSchema`), plus ``plots/``.

:func:`load_model` refuses, with a message that says what differs, a model whose file was altered
(:class:`ModelIntegrityError`), whose card, schema and booster disagree on the features, or whose schema
is not the one the caller expects (:class:`SchemaMismatchError`), or a directory missing a file
(:class:`ModelLoadError`). Pure module: lightgbm, numpy and pydantic only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import lightgbm
import numpy as np
import orjson

from feature_loader.feature_schema import FeatureSchema
from scoring.exceptions import ModelIntegrityError, ModelLoadError, SchemaMismatchError
from scoring.model_card import MODEL_CARD_FILE, Calibration, ModelCard

MODEL_FILE = "model.txt"
SCHEMA_FILE = "feature_schema.json"
REQUIRED_FILES = (MODEL_FILE, MODEL_CARD_FILE, SCHEMA_FILE)


class ScoringModel(Protocol):
    """What scoring needs of a model: the input of :class:`scoring.prepared.PreparedModel`
    (satisfied by :class:`LoadedModel` and :class:`BoosterModel`)."""

    @property
    def booster(self) -> lightgbm.Booster: ...
    @property
    def schema(self) -> FeatureSchema: ...
    @property
    def model_version(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    @property
    def feature_version(self) -> str: ...


@dataclass(frozen=True)
class BoosterModel:
    """A booster held in memory with its schema and threshold, no model card: a :class:`ScoringModel`
    for tests, benchmarks and notebooks (the worker, API and replay load a :class:`LoadedModel`)."""

    booster: lightgbm.Booster
    schema: FeatureSchema
    threshold: float
    model_version: str = "in-memory"
    calibration: Calibration | None = None  # None: the booster's probability is served as it is

    @property
    def feature_version(self) -> str:
        return self.schema.version


@dataclass(frozen=True)
class LoadedModel:
    booster: lightgbm.Booster
    card: ModelCard
    schema: FeatureSchema
    path: Path

    @property
    def model_version(self) -> str:
        return self.card.model_version

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def feature_version(self) -> str:
        return self.schema.version

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probability of default of each row of a (n, len(schema)) float32 matrix in schema order:
        the booster's output through the card's calibration, as served."""
        from scoring.calibration import Calibrator

        return Calibrator(self.card.calibration).apply(self.predict_raw(matrix))

    def predict_raw(self, matrix: np.ndarray) -> np.ndarray:
        """The booster's own probability (before calibration) of each row."""
        x = np.asarray(matrix, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.schema):
            raise SchemaMismatchError(
                f"model {self.model_version} expects (n, {len(self.schema)}) vectors, got shape {x.shape}"
            )
        # one thread: scoring batches are small and OpenMP spinning on a shared machine costs far more
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)


# --- helpers ----------------------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def booster_text(booster: lightgbm.Booster) -> bytes:
    """The exact bytes written to model.txt (all trees; sha256 and model version derive from them)."""
    return booster.model_to_string(num_iteration=-1).encode("utf-8")


def describe_name_diff(expected: Sequence[str], actual: Sequence[str]) -> str:
    """Human-readable difference between two ordered feature lists."""
    exp, act = list(expected), list(actual)
    missing = [n for n in exp if n not in set(act)]
    extra = [n for n in act if n not in set(exp)]
    parts = []
    if len(exp) != len(act):
        parts.append(f"{len(exp)} vs {len(act)} features")
    if missing:
        parts.append(f"missing {_preview(missing)}")
    if extra:
        parts.append(f"unexpected {_preview(extra)}")
    if not missing and not extra:
        pos = next((i for i, (a, b) in enumerate(zip(exp, act, strict=False)) if a != b), None)
        if pos is not None:
            parts.append(f"order differs from position {pos}: expected {exp[pos]!r}, got {act[pos]!r}")
    return "; ".join(parts) or "identical"


def _preview(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', …' if len(names) > limit else ''}] ({len(names)})"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- save -------------------------------------------------------------------------------------------
def save_model(booster: lightgbm.Booster, card: ModelCard, schema: FeatureSchema, out_dir: Path) -> Path:
    """Write model.txt, feature_schema.json and model_card.json (with model_sha256 filled) into out_dir.

    The card is written last, so a directory with a card is complete. Returns ``out_dir``.
    """
    if card.feature_schema_version != schema.version:
        raise SchemaMismatchError(
            f"model card is for feature schema {card.feature_schema_version}, "
            f"but the schema given is {schema.version}"
        )
    names = list(booster.feature_name())
    if names != list(schema.names) or list(card.features) != list(schema.names):
        bad = names if names != list(schema.names) else list(card.features)
        raise SchemaMismatchError(
            f"cannot save: features differ from the schema: {describe_name_diff(schema.names, bad)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = booster_text(booster)
    _atomic_write(out_dir / MODEL_FILE, text)
    _atomic_write(out_dir / SCHEMA_FILE, schema.to_json_bytes())
    final_card = card.model_copy(update={"model_sha256": sha256_bytes(text)})
    _atomic_write(out_dir / MODEL_CARD_FILE, final_card.to_json_bytes())
    return out_dir


# --- load -------------------------------------------------------------------------------------------
def load_model(model_dir: Path, expected_schema: FeatureSchema | None = None) -> LoadedModel:
    """Load and verify a model directory (see module docstring for what is checked)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory not found: {model_dir}")
    missing = [f for f in REQUIRED_FILES if not (model_dir / f).is_file()]
    if missing:
        raise ModelLoadError(f"model directory {model_dir} is missing {', '.join(missing)}")

    try:
        card = ModelCard.load(model_dir / MODEL_CARD_FILE)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"{model_dir / MODEL_CARD_FILE}: invalid model card: {_first_line(exc)}"
        ) from exc
    try:
        schema = FeatureSchema.load(model_dir / SCHEMA_FILE)
    except (ValueError, orjson.JSONDecodeError) as exc:
        msg = f"{model_dir / SCHEMA_FILE}: {_first_line(exc)}"
        if "claims version" in str(exc):
            raise SchemaMismatchError(msg) from exc
        raise ModelLoadError(
            f"{model_dir / SCHEMA_FILE}: invalid feature schema: {_first_line(exc)}"
        ) from exc

    text = (model_dir / MODEL_FILE).read_bytes()
    digest = sha256_bytes(text)
    if digest != card.model_sha256:
        raise ModelIntegrityError(
            f"{model_dir / MODEL_FILE}: sha256 {digest[:16]}… does not match the model card's "
            f"{(card.model_sha256 or '<empty>')[:16]}… (file altered or corrupted)"
        )

    if card.feature_schema_version != schema.version:
        raise SchemaMismatchError(
            f"{model_dir}: model card says feature schema {card.feature_schema_version}, "
            f"{SCHEMA_FILE} is {schema.version}"
        )
    if list(card.features) != list(schema.names):
        raise SchemaMismatchError(
            f"{model_dir}: model card features differ from {SCHEMA_FILE}: "
            f"{describe_name_diff(schema.names, card.features)}"
        )
    if sorted(card.categorical_features) != sorted(schema.categorical_names):
        raise SchemaMismatchError(
            f"{model_dir}: model card categoricals {sorted(card.categorical_features)} differ from "
            f"{SCHEMA_FILE}'s {sorted(schema.categorical_names)}"
        )

    try:
        booster = lightgbm.Booster(model_str=text.decode("utf-8"))
    except (lightgbm.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{model_dir / MODEL_FILE}: not a LightGBM model: {_first_line(exc)}") from exc
    booster_names = list(booster.feature_name())
    if booster_names != list(schema.names):
        raise SchemaMismatchError(
            f"{model_dir / MODEL_FILE}: booster features differ from {SCHEMA_FILE}: "
            f"{describe_name_diff(schema.names, booster_names)}"
        )

    if expected_schema is not None and expected_schema.version != schema.version:
        raise SchemaMismatchError(
            f"model {card.model_version} was trained on feature schema {schema.version}, expected "
            f"{expected_schema.version}: {describe_name_diff(expected_schema.names, schema.names)}"
        )
    return LoadedModel(booster=booster, card=card, schema=schema, path=model_dir)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- locate -----------------------------------------------------------------------------------------
def resolve_model_dir(models_dir: Path, path: Path | None = None) -> Path:
    """The explicit ``path`` if given, else the newest complete model directory under ``models_dir``."""
    if path is not None:
        path = Path(path)
        if not path.is_dir():
            raise ModelLoadError(f"model directory not found: {path}")
        return path
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ModelLoadError(
            f"no model directory given and {models_dir} does not exist: train one with "
            "`credit-scorer train run` or set CREDIT_SCORER_MODEL__PATH"
        )
    candidates = [d for d in models_dir.iterdir() if d.is_dir() and (d / MODEL_CARD_FILE).is_file()]
    if not candidates:
        raise ModelLoadError(
            f"no model under {models_dir} (no subdirectory with {MODEL_CARD_FILE}): train one with "
            "`credit-scorer train run` or set CREDIT_SCORER_MODEL__PATH"
        )
    return max(candidates, key=_created_at_key)


def _created_at_key(model_dir: Path) -> tuple[float, str]:
    card_path = model_dir / MODEL_CARD_FILE
    try:
        created = orjson.loads(card_path.read_bytes())["created_at"]
        stamp = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        stamp = card_path.stat().st_mtime
    return stamp, model_dir.name
