"""The model card: everything needed to use, audit and monitor one trained model.

Written by the training as ``model_card.json`` next to ``model.txt``; read by
:func:`scoring.model.load_model`.
Pure module (pydantic only).

Decision rule: REFUS when the probability of default is ``>= threshold``, ACCORD otherwise. That
probability is the booster's output passed through ``calibration`` (:mod:`scoring.calibration`): the
threshold, the metrics and the score reference are all on that calibrated scale. A card without
``calibration`` (older models) serves the booster's output as it is.

``reference`` holds the training-time distributions used for drift monitoring, in exactly this shape::

    {"score":    {"edges": [...], "proportions": [...], "missing": 0.0},
     "features": {"<name>": {"edges": [...], "proportions": [...], "missing": <share of NaN>}, ...}}

``edges`` are sorted distinct interior cut points; the bins are ``(-inf, e0], (e0, e1], …, (e_last, +inf)``,
so ``len(proportions) == len(edges) + 1``; proportions are shares of the non-missing values.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MODEL_CARD_FILE = "model_card.json"


class ReferenceHistogram(BaseModel):
    """A binned distribution (see module docstring for the bin convention)."""

    model_config = ConfigDict(frozen=True)

    edges: list[float]
    proportions: list[float]
    missing: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> ReferenceHistogram:
        if len(self.proportions) != len(self.edges) + 1:
            raise ValueError(
                f"reference histogram has {len(self.edges)} edges but {len(self.proportions)} proportions "
                f"(expected {len(self.edges) + 1})"
            )
        if not all(math.isfinite(e) for e in self.edges):
            raise ValueError("reference histogram edges must be finite")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("reference histogram edges must be strictly increasing")
        if any(p < 0 for p in self.proportions):
            raise ValueError("reference histogram proportions must be >= 0")
        total = sum(self.proportions)
        if self.proportions and total > 0 and not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"reference histogram proportions sum to {total}, not 1")
        return self

    def bin_of(self, value: float) -> int | None:
        """Index of the bin holding ``value`` (None for NaN)."""
        if value != value:
            return None
        lo, hi = 0, len(self.edges)
        while lo < hi:  # first edge >= value
            mid = (lo + hi) // 2
            if self.edges[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        return lo


def validate_reference(reference: dict[str, Any]) -> dict[str, Any]:
    """Check the reference shape (see module docstring) and return it normalised to plain floats."""
    if set(reference) != {"score", "features"}:
        raise ValueError(
            f"reference must have exactly the keys 'score' and 'features', got {sorted(reference)}"
        )
    features = reference["features"]
    if not isinstance(features, dict):
        raise ValueError("reference['features'] must be a mapping of feature name to histogram")
    out: dict[str, Any] = {"score": ReferenceHistogram.model_validate(reference["score"]).model_dump()}
    out["features"] = {
        str(name): ReferenceHistogram.model_validate(hist).model_dump() for name, hist in features.items()
    }
    return out


CalibrationMethod = Literal["identity", "isotonic", "platt"]


class Calibration(BaseModel):
    """How the booster's probability becomes the served probability of default.

    ``identity``: served as it is (a model trained without class weights is calibrated by itself);
    ``isotonic``: piecewise-linear through the knots ``(x, y)`` (x increasing, y non-decreasing, both in
    [0, 1]; flat outside the knots); ``platt``: ``sigmoid(a · logit(p) + b)``.
    """

    model_config = ConfigDict(frozen=True)

    method: CalibrationMethod = "identity"
    x: list[float] = Field(default_factory=list, description="isotonic: raw probabilities (knots).")
    y: list[float] = Field(default_factory=list, description="isotonic: calibrated value at each knot.")
    a: float = Field(1.0, description="platt: slope on the logit.")
    b: float = Field(0.0, description="platt: intercept on the logit.")
    fitted_on: str = Field("", description="What the calibration was fitted on (rows, scores).")

    @model_validator(mode="after")
    def _consistent(self) -> Calibration:
        if self.method == "isotonic":
            if not self.x or len(self.x) != len(self.y):
                raise ValueError(
                    f"isotonic calibration needs as many x as y knots, got {len(self.x)}/{len(self.y)}"
                )
            if any(b <= a for a, b in zip(self.x, self.x[1:], strict=False)):
                raise ValueError("isotonic calibration knots x must be strictly increasing")
            if any(b < a for a, b in zip(self.y, self.y[1:], strict=False)):
                raise ValueError("isotonic calibration values y must be non-decreasing")
            if not all(0.0 <= v <= 1.0 for v in (*self.x, *self.y)):
                raise ValueError("isotonic calibration knots must lie in [0, 1]")
        elif self.x or self.y:
            raise ValueError(f"{self.method} calibration takes no knots")
        if not (math.isfinite(self.a) and math.isfinite(self.b)) or self.a <= 0:
            raise ValueError(
                f"platt calibration needs a finite slope > 0 and a finite intercept, got {self.a}, {self.b}"
            )
        return self


class UnknownClientPath(BaseModel):
    """How well the model decides clients unknown to the cache (scored on their application alone),
    measured on the held-out split with the cached features removed; read by the policy."""

    model_config = ConfigDict(frozen=True)

    auc: float
    known_auc: float = Field(description="AUC of the same held-out clients with their cached history.")
    cost_at_threshold: float
    cost_accept_all: float = Field(description="Cost of approving every held-out client.")
    weak: bool = Field(description="True: decide these clients otherwise (e.g. REFER), see ``why``.")
    why: str


class TrainingData(BaseModel):
    model_config = ConfigDict(frozen=True)

    fingerprint: str = Field(description="sha256 of the feature parquet content (or of build_info.json).")
    rows: int = Field(ge=0, description="Labelled rows used (train + held-out).")
    positives: int = Field(ge=0)
    train_rows: int | None = None
    holdout_rows: int | None = None
    source: str | None = Field(None, description="Feature directory the model was trained from.")

    def __getitem__(self, key: str) -> Any:  # dict-style access, like the other card sections
        return getattr(self, key)


class ModelCard(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_version: str = Field(description='e.g. "20261121T1230-ab12cd34" (UTC time + sha256 prefix).')
    created_at: datetime
    feature_schema_version: str
    features: list[str] = Field(description="Ordered model input names (= feature schema order).")
    categorical_features: list[str] = Field(default_factory=list)
    threshold: float = Field(ge=0.0, le=1.0, description="REFUS when P(default) >= threshold.")
    cost_matrix: dict[str, float] = Field(default_factory=lambda: {"fn": 10.0, "fp": 1.0})
    metrics: dict[str, float] = Field(default_factory=dict, description="Held-out metrics.")
    confusion_matrix: dict[str, int] = Field(
        default_factory=dict, description='Held-out counts at the threshold: {"tn", "fp", "fn", "tp"}.'
    )
    training_data: TrainingData
    params: dict[str, Any] = Field(default_factory=dict)
    lightgbm_version: str
    model_sha256: str = Field("", description="sha256 of model.txt; filled by save_model.")
    reference: dict[str, Any] | None = Field(
        None, description="Training distributions of the score and top features (module docstring)."
    )
    calibration: Calibration = Field(
        default_factory=Calibration, description="Booster output → served probability of default."
    )
    unknown_client_path: UnknownClientPath | None = Field(
        None, description="Quality of the decision for clients unknown to the cache (None: not measured)."
    )
    fairness: dict[str, Any] | None = Field(
        None,
        description="Approval rate, mean P(default) and disparate impact by segment at the threshold "
        "(training.fairness; None: not measured).",
    )

    @field_validator("features")
    @classmethod
    def _unique_features(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("model card features must be unique")
        return v

    @field_validator("reference")
    @classmethod
    def _reference_shape(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else validate_reference(v)

    @model_validator(mode="after")
    def _categoricals_are_features(self) -> ModelCard:
        unknown = sorted(set(self.categorical_features) - set(self.features))
        if unknown:
            raise ValueError(f"categorical_features not among features: {unknown}")
        return self

    # --- (de)serialisation ------------------------------------------------------------------------
    def to_json_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json_bytes(cls, raw: bytes | str) -> ModelCard:
        return cls.model_validate(orjson.loads(raw))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_json_bytes())

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        return cls.from_json_bytes(path.read_bytes())
