"""Reason codes: the model's contributions, grouped into the principal reasons a lender can send.

A :class:`ReasonCatalogue` (the committed ``scoring/data/reason_codes.yaml``, read by
:mod:`scoring.policy_file`) lists groups — external scores, debt burden, employment, age, late
payments, bureau debt, previous refusals, … — each with a code, plain-language texts and the features
it covers (exact names, then regular expressions; the first group that matches a feature takes it).
:func:`bind_catalogue` maps every feature of a model's schema to one group, and refuses a schema with a
feature no group covers.

:meth:`BoundCatalogue.codes` takes per-row contributions (rows × features, log-odds, positive = towards
default; today path attributions, exact TreeSHAP plugs in at the same place) and gives each row up to
``k`` distinct codes, strongest first, each with its summed contribution and the features behind it.
A refused or referred row is explained by what pushed it towards default, an approved one by what
pushed it away. Pure: numpy and pydantic only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import repeat
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feature_loader.feature_schema import FeatureKind
from scoring.exceptions import CatalogueBindError
from scoring.results import CodeReason, Reason

if TYPE_CHECKING:
    from feature_loader.feature_schema import FeatureField, FeatureSchema

MAX_CODES = 4  # Regulation B practice: up to four principal reasons


class ReasonGroup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")]
    text: Annotated[str, Field(min_length=1, max_length=300)]
    text_fr: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    features: list[str] = Field(default_factory=list, description="Exact feature names.")
    patterns: list[str] = Field(default_factory=list, description="Regular expressions (full match).")

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"pattern {p!r} is not a regular expression: {exc}") from None
        return patterns


class ReasonCatalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1, max_length=64)
    max_codes: int = Field(MAX_CODES, ge=1, le=MAX_CODES)
    features_per_code: int = Field(3, ge=1, le=10)
    groups: list[ReasonGroup] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> ReasonCatalogue:
        codes = [g.code for g in self.groups]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"reason codes must be unique, repeated: {dupes}")
        return self

    def group_of(self, name: str) -> int | None:
        """Index of the group covering a feature: an exact name anywhere first, then the first pattern."""
        for i, g in enumerate(self.groups):
            if name in g.features:
                return i
        for i, g in enumerate(self.groups):
            if any(re.fullmatch(p, name) for p in g.patterns):
                return i
        return None


OTHER = ReasonGroup(code="R99_OTHER", text="Other information about the application.")


class BoundCatalogue:
    """A catalogue bound to one feature schema: each feature's group (``group``). ``strict``
    (the entry points): a feature no group covers is an error; otherwise (tests and benchmarks on
    made-up schemas) such features form one more group, :data:`OTHER`."""

    def __init__(self, catalogue: ReasonCatalogue, schema: FeatureSchema, *, strict: bool = True) -> None:
        groups = [catalogue.group_of(f.name) for f in schema.fields]
        orphans = [f.name for f, g in zip(schema.fields, groups, strict=True) if g is None]
        if orphans and strict:
            raise CatalogueBindError(
                f"reason catalogue {catalogue.version}: no group covers feature(s) {orphans[:10]}"
                + (f" and {len(orphans) - 10} more" if len(orphans) > 10 else "")
            )
        if orphans:
            catalogue = catalogue.model_copy(update={"groups": [*catalogue.groups, OTHER]})
            groups = [len(catalogue.groups) - 1 if g is None else g for g in groups]
        self.catalogue = catalogue
        self.version = catalogue.version
        self.group = np.asarray(groups, dtype=np.int64)  # feature → group
        self._members = [np.flatnonzero(self.group == g) for g in range(len(catalogue.groups))]
        self._perm = np.argsort(self.group, kind="stable")  # features grouped, in schema order within
        self._present = [g for g, members in enumerate(self._members) if members.size]
        self._starts = np.cumsum([0] + [self._members[g].size for g in self._present])[:-1]
        self._names = [f.name for f in schema.fields]
        self._decode = [_decoder(f) for f in schema.fields]
        # the strings of the codes built, taken for many rows at once
        self._names_arr = np.asarray(self._names, dtype=object)
        self._categorical = np.asarray([f.kind is FeatureKind.CATEGORICAL for f in schema.fields], dtype=bool)
        self._codes_arr = np.asarray([g.code for g in catalogue.groups], dtype=object)
        self._texts_arr = np.asarray([g.text for g in catalogue.groups], dtype=object)

    def codes(
        self, contributions: np.ndarray, values: np.ndarray, towards_default: np.ndarray, k: int
    ) -> list[tuple[CodeReason, ...]]:
        """Up to ``k`` codes per row (see the module docstring). ``values``: the rows' assembled vectors
        (for the features' readable values); ``towards_default``: (m,) bool, True for REFUS/REFER."""
        m = contributions.shape[0]
        k = min(k, self.catalogue.max_codes, len(self._members))
        if m == 0 or k <= 0:
            return [() for _ in range(m)]
        sign = np.where(np.asarray(towards_default, dtype=bool), 1.0, -1.0)
        signed = contributions * sign[:, None]
        sums = self.group_sums(signed)  # (m, G), in the explained direction
        # a row no group pushes its way on balance (a refusal where the model's base rate alone is at
        # the threshold): rank the groups by the features that did push its way
        none = ~(sums > 0.0).any(axis=1)
        if none.any():
            sums[none] = self.group_sums(np.maximum(signed[none], 0.0))
        order = np.argsort(-sums, axis=1, kind="stable")[:, :k]
        # a row's codes stop at its first group not pushing its way (ranked: the rest are not either)
        keep = np.logical_and.accumulate(np.take_along_axis(sums, order, axis=1) > 0.0, axis=1)
        net = np.take_along_axis(self.group_sums(contributions), order, axis=1)[keep].tolist()
        top = self._top_features(signed, order)  # (m, k, per) feature indices, -1 = none
        at = np.arange(m)[:, None, None], np.maximum(top, 0)
        shown = (top >= 0) & (signed[at] > 0.0) & keep[:, :, None]  # only features pushing the row's way
        behind = self._reasons(top[shown], values[at][shown], contributions[at][shown])
        per_code = np.cumsum(shown.sum(axis=2)[keep]).tolist()  # where each kept code's features end
        groups = order[keep]
        new = tuple.__new__  # NamedTuple(...) without its Python-level __new__: same objects
        made = list(
            map(
                new,
                repeat(CodeReason),
                zip(
                    self._codes_arr[groups].tolist(),
                    self._texts_arr[groups].tolist(),
                    net,
                    map(tuple, map(behind.__getitem__, map(slice, [0, *per_code[:-1]], per_code))),
                    strict=True,
                ),
            )
        )
        ends = np.cumsum(keep.sum(axis=1)).tolist()
        return list(map(tuple, map(made.__getitem__, map(slice, [0, *ends[:-1]], ends))))

    def _reasons(self, features: np.ndarray, values: np.ndarray, contributions: np.ndarray) -> list[Reason]:
        """The :class:`Reason` of each (feature, assembled value, contribution), in order: the value made
        readable as ``field.decode`` does (None for NaN, a float, or a categorical's level name)."""
        shown = values.astype(np.float64).astype(object)  # Python floats, as tolist() gives
        shown[np.isnan(values)] = None
        cat = np.flatnonzero(self._categorical[features])
        if cat.size:
            decode = self._decode
            shown[cat] = [
                decode[j](v) for j, v in zip(features[cat].tolist(), values[cat].tolist(), strict=True)
            ]
        new = tuple.__new__
        return list(
            map(
                new,
                repeat(Reason),
                zip(self._names_arr[features].tolist(), shown.tolist(), contributions.tolist(), strict=True),
            )
        )

    def group_sums(self, x: np.ndarray) -> np.ndarray:
        """(m, G): each group's sum of a row's values, summed the same way whatever the batch (not a
        BLAS product, whose rounding depends on the batch's shape: a row's codes must not)."""
        out = np.zeros((x.shape[0], len(self._members)), dtype=np.float64)
        out[:, self._present] = np.add.reduceat(x[:, self._perm], self._starts, axis=1)
        return out

    def _top_features(self, signed: np.ndarray, order: np.ndarray) -> np.ndarray:
        """(m, k, per): for each row and each of its ranked groups, the group's strongest features
        (indices into the schema, strongest first; -1 pads a group with fewer features)."""
        per = self.catalogue.features_per_code
        out = np.full((*order.shape, per), -1, dtype=np.int64)
        for g in np.unique(order).tolist():
            members = self._members[g]
            block = -signed[:, members]
            if members.size > per:  # the strongest `per` first (a partial sort), then in order
                part = np.argpartition(block, per - 1, axis=1)[:, :per]
                part = np.take_along_axis(
                    part, np.argsort(np.take_along_axis(block, part, axis=1), axis=1), 1
                )
            else:
                part = np.argsort(block, axis=1, kind="stable")
            ranked = members[part]
            rows, slots = np.nonzero(order == g)
            out[rows, slots, : ranked.shape[1]] = ranked[rows]
        return out


def _number(value: float) -> float | None:
    return None if value != value else value


def _decoder(field: FeatureField) -> Callable[[float], object]:
    """``field.decode`` without its per-call attribute lookups (it runs for every feature shown)."""
    if field.kind is not FeatureKind.CATEGORICAL:
        return _number
    levels = tuple(field.categories or ())

    def level(value: float) -> str | None:
        if value != value:
            return None
        i = int(value)
        return levels[i] if 0 <= i < len(levels) else None

    return level


def bind_catalogue(
    catalogue: ReasonCatalogue, schema: FeatureSchema, *, strict: bool = True
) -> BoundCatalogue:
    """The catalogue bound to a model's schema (CatalogueBindError naming the uncovered features)."""
    return BoundCatalogue(catalogue, schema, strict=strict)
