"""Feature-vector assembly: cached client vectors + the application's fields → the model matrix.

For a batch: copy the cached float32 matrix (NaN rows for clients absent from the cache), overwrite each
``event`` field the application carries (categoricals encoded as in
:meth:`FeatureField.encode`), then recompute the derived columns with
:func:`feature_loader.derived.apply_derived` — the same function the offline feature build runs, so
online and offline vectors are bit-identical. Event fields not carried keep the cached value; an unknown
client is scored on the application fields alone. Fields the schema does not have are ignored (the
model does not use them). Pure: numpy and the feature schema only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from feature_loader.feature_schema import FeatureKind, FeatureSchema
from scoring.exceptions import InvalidInputError, SchemaMismatchError

_NAN = float("nan")
_ABSENT = object()  # a field the event does not carry
_NONE_TYPE = type(None)
_PLAIN_NUMBERS = frozenset({float, int, _NONE_TYPE})


class VectorAssembler:
    """Assembly for one feature schema (lookups precomputed once)."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self.n_features = len(schema)
        self._column: dict[str, int] = {f.name: schema.index[f.name] for f in schema.event_fields}
        self._levels: dict[str, dict[str, float]] = {}
        for f in schema.event_fields:
            if f.kind is FeatureKind.CATEGORICAL:
                levels: dict[str, float] = {}
                for i, level in enumerate(f.categories or ()):
                    levels.setdefault(level, float(i))  # first occurrence, as FeatureField.encode
                self._levels[f.name] = levels
        self._has_derived = bool(schema.derived_fields)

    def encode(self, name: str, value: object) -> float:
        """The stored float of one event field's raw value (NaN = missing / unknown level)."""
        if value is None:
            return _NAN
        levels = self._levels.get(name)
        if levels is not None:
            return levels.get(str(value), _NAN)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"field {name!r} must be a number, got {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:
            raise InvalidInputError(f"field {name!r} is out of range, got {value}") from None
        if not math.isfinite(number):
            raise InvalidInputError(f"field {name!r} must be finite, got {number}")
        return number

    def assemble(
        self,
        cached: np.ndarray,
        fields: Sequence[Mapping[str, object]],
        found: np.ndarray | None = None,
    ) -> np.ndarray:
        """The (n, F) float32 model matrix. ``cached`` is not modified."""
        if cached.ndim != 2 or cached.shape[1] != self.n_features:
            raise SchemaMismatchError(
                f"cached feature matrix has shape {cached.shape}, the schema has {self.n_features} features"
            )
        if cached.shape[0] != len(fields):
            raise InvalidInputError(f"{len(fields)} inputs but {cached.shape[0]} cached feature rows")
        matrix = np.array(cached, dtype=np.float32, order="C", copy=True)
        if found is not None:
            found = np.asarray(found, dtype=bool)
            if found.shape != (len(fields),):
                raise InvalidInputError(f"found mask has shape {found.shape}, expected ({len(fields)},)")
            matrix[~found] = np.nan
        n = len(fields)
        for name, j in self._column.items():  # column by column: a few C-speed passes per field
            values = [carried.get(name, _ABSENT) for carried in fields]
            absent = values.count(_ABSENT)
            if absent == n:
                continue
            if absent:
                rows = [i for i, v in enumerate(values) if v is not _ABSENT]
                matrix[rows, j] = self._encode_column(name, [values[i] for i in rows], rows)
            else:
                matrix[:, j] = self._encode_column(name, values, range(n))
        return self.derive(matrix)

    def invalid_rows(self, fields: Sequence[Mapping[str, object]]) -> list[tuple[int, str]]:
        """(row, why) of every row carrying a field value :meth:`assemble` cannot use — exactly the rows
        that make it raise InvalidInputError (the same :meth:`encode` decides both), first bad field named."""
        out: list[tuple[int, str]] = []
        for i, carried in enumerate(fields):
            for name in self._column:
                value = carried.get(name, _ABSENT)
                if value is _ABSENT:
                    continue
                try:
                    self.encode(name, value)
                except InvalidInputError as exc:
                    out.append((i, str(exc)))
                    break
        return out

    def _encode_column(self, name: str, values: list[object], rows: Sequence[int]) -> np.ndarray:
        levels = self._levels.get(name)
        if levels is not None:
            encoded = [
                _NAN if v is None else levels.get(v if type(v) is str else str(v), _NAN) for v in values
            ]
            return np.asarray(encoded, dtype=np.float64).astype(np.float32)
        types = set(map(type, values))
        if types <= _PLAIN_NUMBERS:  # the usual case: numbers and nulls, no bool, no text
            has_null = _NONE_TYPE in types
            try:
                numbers = np.asarray(
                    [_NAN if v is None else v for v in values] if has_null else values, np.float64
                )
            except OverflowError:
                numbers = None
            if numbers is not None:
                bad = ~np.isfinite(numbers)
                if has_null:
                    bad &= np.asarray([v is not None for v in values])
                if not bad.any():
                    return numbers.astype(np.float32)
        # a bad value: encode one by one (names the first bad input)
        out = np.empty(len(values), dtype=np.float64)
        for k, (i, v) in enumerate(zip(rows, values, strict=True)):
            try:
                out[k] = self.encode(name, v)
            except InvalidInputError as exc:
                raise InvalidInputError(f"input {i}: {exc}") from None
        return out.astype(np.float32)

    def derive(self, matrix: np.ndarray) -> np.ndarray:
        """Recompute the derived columns of an assembled (n, F) float32 matrix in place; returns it."""
        if self._has_derived:
            from feature_loader.derived import apply_derived  # pure module (numpy + schema)

            try:
                apply_derived(matrix, self.schema)
            except ValueError as exc:
                raise SchemaMismatchError(f"cannot compute derived features: {exc}") from exc
        return matrix
