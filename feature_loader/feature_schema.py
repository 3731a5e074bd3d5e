"""The feature schema: ordered model inputs, their kinds and where each one comes from.

Pure module (no I/O besides JSON (de)serialisation helpers), shared by the feature build, training,
the Redis cache and the scorer.

Every feature is a float32 in one fixed-order vector (the model's input order). Categorical features
are stored as the index of their level in ``categories`` (unknown level → NaN, which LightGBM treats as
missing).

``source`` says where the value comes from at scoring time:

* ``event``   – a raw application field that arrives with each application event (requested amount,
  contract type, goods price, …). The cached vector also holds the value from the client's last
  application, used when the event does not carry it (an event with only ``sk_id_curr`` is valid).
* ``cached``  – a client feature precomputed by the feature build and cached in Redis.
* ``derived`` – computed from other features by :mod:`feature_loader.derived` after the event fields
  have been merged over the cached vector, so ratios always use the amounts actually requested.

The version is a hash of the ordered (name, kind, source, categories) list: it changes with any schema
change and is stable across runs and machines.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from functools import cached_property
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, model_validator


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class FeatureSource(StrEnum):
    EVENT = "event"
    CACHED = "cached"
    DERIVED = "derived"


class FeatureField(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: FeatureKind = FeatureKind.NUMERIC
    source: FeatureSource = FeatureSource.CACHED
    categories: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _categories_match_kind(self) -> FeatureField:
        if self.kind is FeatureKind.CATEGORICAL and not self.categories:
            raise ValueError(f"categorical feature {self.name!r} needs its categories")
        if self.kind is FeatureKind.NUMERIC and self.categories is not None:
            raise ValueError(f"numeric feature {self.name!r} cannot have categories")
        return self

    def encode(self, value: object) -> float:
        """Encode one raw value into the float stored in the vector (NaN when missing/unknown)."""
        if value is None:
            return float("nan")
        if self.kind is FeatureKind.CATEGORICAL:
            assert self.categories is not None
            try:
                return float(self.categories.index(str(value)))
            except ValueError:
                return float("nan")
        return float(value)  # type: ignore[arg-type]

    def decode(self, value: float) -> object:
        """Human-readable value of a stored float (level name for categoricals, None for NaN)."""
        if value != value:  # NaN
            return None
        if self.kind is FeatureKind.CATEGORICAL:
            assert self.categories is not None
            idx = int(value)
            return self.categories[idx] if 0 <= idx < len(self.categories) else None
        return float(value)


class FeatureSchema(BaseModel):
    model_config = ConfigDict(frozen=True)

    fields: tuple[FeatureField, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSchema:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {dupes}")
        if not names:
            raise ValueError("a feature schema needs at least one feature")
        return self

    # --- identity -------------------------------------------------------------------------------
    @cached_property
    def version(self) -> str:
        canonical = orjson.dumps(
            [[f.name, f.kind.value, f.source.value, list(f.categories or ())] for f in self.fields]
        )
        return hashlib.sha256(canonical).hexdigest()[:16]

    # --- views --------------------------------------------------------------------------------------
    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def index(self) -> dict[str, int]:
        return {f.name: i for i, f in enumerate(self.fields)}

    def by_source(self, source: FeatureSource) -> tuple[FeatureField, ...]:
        return tuple(f for f in self.fields if f.source is source)

    @property
    def event_fields(self) -> tuple[FeatureField, ...]:
        return self.by_source(FeatureSource.EVENT)

    @property
    def cached_fields(self) -> tuple[FeatureField, ...]:
        return self.by_source(FeatureSource.CACHED)

    @property
    def derived_fields(self) -> tuple[FeatureField, ...]:
        return self.by_source(FeatureSource.DERIVED)

    @cached_property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind is FeatureKind.CATEGORICAL)

    def __len__(self) -> int:
        return len(self.fields)

    def field(self, name: str) -> FeatureField:
        return self.fields[self.index[name]]

    # --- (de)serialisation ------------------------------------------------------------------------
    def to_json_bytes(self) -> bytes:
        doc = {"version": self.version, **self.model_dump(mode="json", exclude_none=True)}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json_bytes(cls, raw: bytes | str) -> FeatureSchema:
        doc = orjson.loads(raw)
        claimed = doc.pop("version", None)
        schema = cls.model_validate(doc)
        if claimed is not None and claimed != schema.version:
            raise ValueError(
                f"feature schema claims version {claimed} but its fields hash to {schema.version}"
            )
        return schema

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_json_bytes())

    @classmethod
    def load(cls, path: Path) -> FeatureSchema:
        return cls.from_json_bytes(path.read_bytes())
