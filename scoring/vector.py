"""Feature-vector assembly: cached client vectors + the application's fields → the model matrix.

For a batch: copy the cached float32 matrix (NaN rows for clients absent from the cache), overwrite each
``event`` field the application carries (categoricals encoded as in
:meth:`FeatureField.encode`), then recompute the derived columns with
:func:`feature_loader.derived.apply_derived` — the same function the offline feature build runs, so
online and offline vectors are bit-identical. Event fields not carried keep the cached value; an unknown
client is scored on the application fields alone. Fields the schema does not have are ignored (the
model does not use them). Pure: numpy and the feature schema only.

Event fields are written as one numeric and one categorical block (one conversion for the batch;
whole-form events, which carry every event field, null when unknown, with one C-level item lookup per
event) rather than field by field; a partial form's missing fields are marked and keep the cached
value. The block is used only when it gives exactly what the field-by-field path gives (plain numbers
and nulls, finite), otherwise the batch takes the field-by-field path, which names the bad value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter

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
        numeric = [name for name in self._column if name not in self._levels]
        # the block path needs a tuple per event: itemgetter of one name would return the value itself
        self._numeric = frozenset(numeric) if len(numeric) >= 2 else frozenset()
        self._numeric_cols = np.asarray([self._column[n] for n in numeric], dtype=np.intp)
        self._numeric_getter = itemgetter(*numeric) if self._numeric else None
        self._numeric_position = {name: k for k, name in enumerate(numeric)}
        categorical = list(self._levels)
        self._categorical = frozenset(categorical) if len(categorical) >= 2 else frozenset()
        self._categorical_cols = np.asarray([self._column[n] for n in categorical], dtype=np.intp)
        self._categorical_getter = itemgetter(*categorical) if self._categorical else None
        self._categorical_levels = [self._levels[n] for n in categorical]
        self._categorical_position = {name: k for k, name in enumerate(categorical)}

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
        filled: frozenset[str] = frozenset()
        block = self._numeric_block(fields) if n else None
        if block is not None:
            _write_block(matrix, self._numeric_cols, *block)
            filled = self._numeric
        levels = self._categorical_block(fields) if n else None
        if levels is not None:
            _write_block(matrix, self._categorical_cols, *levels)
            filled = filled | self._categorical
        for name, j in self._column.items():  # column by column: a few C-speed passes per field
            if name in filled:
                continue
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

    def _numeric_block(self, fields: Sequence[Mapping[str, object]]) -> _Block | None:
        """The (n, numeric event fields) float32 block and where an event does not carry a field (None:
        every event carries every one), when every value carried is a plain finite number or null —
        exactly the values the field-by-field path writes — else None."""
        getter = self._numeric_getter
        if getter is None:
            return None
        rows, absent = _event_rows(getter, self._numeric, self._numeric_position, fields)
        flat = list(chain.from_iterable(rows))  # an absent field: None here, the cached value after
        if not set(map(type, flat)) <= _PLAIN_NUMBERS:
            return None  # bool, text, …: the field-by-field path refuses it and names it
        try:
            block = np.array(flat, dtype=np.float64).reshape(len(rows), -1)  # null → NaN
        except OverflowError:
            return None
        finite = np.isfinite(block).all()
        if not finite and (np.isinf(block).any() or int(np.isnan(block).sum()) != flat.count(None)):
            return None  # an inf or NaN value (not a null): refused by the field-by-field path
        return block.astype(np.float32), absent

    def _categorical_block(self, fields: Sequence[Mapping[str, object]]) -> _Block | None:
        """The (n, categorical event fields) block of level indices (the same values
        :meth:`_encode_column` gives) and where an event does not carry a field (None: none missing)."""
        getter = self._categorical_getter
        if getter is None:
            return None
        rows, absent = _event_rows(getter, self._categorical, self._categorical_position, fields)
        nan = _NAN
        columns = [
            [nan if v is None else levels.get(v if type(v) is str else str(v), nan) for v in col]
            for levels, col in zip(self._categorical_levels, zip(*rows, strict=True), strict=True)
        ]
        return np.asarray(columns, dtype=np.float64).T.astype(np.float32), absent

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

    def derive(self, matrix: np.ndarray, changed: frozenset[str] | None = None) -> np.ndarray:
        """Recompute the derived columns of an assembled (n, F) float32 matrix in place (``changed``:
        only those computed from these inputs); returns it."""
        if self._has_derived:
            from feature_loader.derived import apply_derived  # pure module (numpy + schema)

            try:
                apply_derived(matrix, self.schema, changed)
            except ValueError as exc:
                raise SchemaMismatchError(f"cannot compute derived features: {exc}") from exc
        return matrix


_Block = tuple[np.ndarray, np.ndarray | None]  # (n, k) values, and (n, k) True where not carried (or None)


class _NullWhenMissing(dict[str, object]):
    def __missing__(self, key: str) -> None:
        return None


def _event_rows(
    getter: itemgetter[tuple[object, ...]],
    wanted: frozenset[str],
    position: Mapping[str, int],
    fields: Sequence[Mapping[str, object]],
) -> tuple[list[Sequence[object]], np.ndarray | None]:
    """Each event's values of the ``getter``'s names (``wanted``; ``position``: each one's place in a
    row) — one C-level lookup per event that carries every one — and where an event does not carry one
    (its value None in the row; the mask None when no event lacks one)."""
    try:
        return [getter(carried) for carried in fields], None
    except KeyError:  # a partial form
        pass
    rows: list[Sequence[object]] = []
    at_row: list[int] = []
    at_col: list[int] = []
    for i, carried in enumerate(fields):
        missing = wanted.difference(carried)
        if missing:  # a copy that answers None for them: one C-level lookup still (a .get per name: 5x)
            at_row.extend([i] * len(missing))
            at_col.extend([position[name] for name in missing])
            carried = _NullWhenMissing(carried)
        rows.append(getter(carried))
    absent = np.zeros((len(fields), len(position)), dtype=bool)
    absent[at_row, at_col] = True
    return rows, absent


def _write_block(matrix: np.ndarray, cols: np.ndarray, block: np.ndarray, absent: np.ndarray | None) -> None:
    """Write ``block`` into ``cols`` of ``matrix``, keeping the matrix's (cached) value where absent."""
    matrix[:, cols] = block if absent is None else np.where(absent, matrix[:, cols], block)
