"""Approval rate and mean probability of default by segment, and the disparate-impact ratio. Pure: numpy.

Segments and their groups are fixed, bounded sets (they become metric labels):

* ``gender``: the levels of ``CODE_GENDER`` in the feature schema;
* ``age_band``: from ``DAYS_BIRTH`` — ``<30``, ``30-44``, ``45-59``, ``60+``;
* ``contract_type``: the levels of ``NAME_CONTRACT_TYPE``;
* ``income_band``: from ``AMT_INCOME_TOTAL`` — ``<100k``, ``100-200k``, ``200-300k``, ``300k+``;

plus ``unknown`` in each (a missing value). A segment whose column is not in the model's schema is
left out. The groups are read from the assembled matrix (categoricals are level indexes).

Disparate impact of a segment = lowest approval rate / highest approval rate among its groups with at
least ``min_decisions`` decisions (``unknown`` excluded): the "four-fifths rule" flags < 0.8. None
until two groups qualify.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feature_loader.feature_schema import FeatureSchema

UNKNOWN = "unknown"
AGE_EDGES = (30.0, 45.0, 60.0)  # years
AGE_GROUPS = ("<30", "30-44", "45-59", "60+")
INCOME_EDGES = (100_000.0, 200_000.0, 300_000.0)
INCOME_GROUPS = ("<100k", "100-200k", "200-300k", "300k+")


@dataclass(frozen=True)
class Segment:
    name: str
    column: int  # index in the schema
    groups: tuple[str, ...]  # the last one is UNKNOWN
    edges: tuple[float, ...] | None  # None: a categorical (the value is the level index)
    scale: float = 1.0  # value * scale before the edges (DAYS_BIRTH → years)

    def codes(self, matrix: np.ndarray) -> np.ndarray:
        """Group index of each row (len(groups) - 1 = unknown)."""
        col = matrix[:, self.column].astype(np.float64) * self.scale
        unknown = len(self.groups) - 1
        missing = ~np.isfinite(col)
        if self.edges is None:
            out = np.where(missing, unknown, np.nan_to_num(col, nan=unknown)).astype(np.int64)
            out[(out < 0) | (out > unknown)] = unknown
            return out
        out = np.searchsorted(np.asarray(self.edges), np.nan_to_num(col), side="right")
        out[missing] = unknown
        return out


def segments_for(schema: FeatureSchema) -> list[Segment]:
    """The segments this schema can tell (each needs its column)."""
    index = schema.index
    by_name = {f.name: f for f in schema.fields}
    out: list[Segment] = []
    for name, column in (("gender", "CODE_GENDER"), ("contract_type", "NAME_CONTRACT_TYPE")):
        field = by_name.get(column)
        if field is not None and field.categories:
            out.append(Segment(name, index[column], (*field.categories, UNKNOWN), None))
    if "DAYS_BIRTH" in index:
        out.append(Segment("age_band", index["DAYS_BIRTH"], (*AGE_GROUPS, UNKNOWN), AGE_EDGES, -1 / 365.25))
    if "AMT_INCOME_TOTAL" in index:
        out.append(Segment("income_band", index["AMT_INCOME_TOTAL"], (*INCOME_GROUPS, UNKNOWN), INCOME_EDGES))
    return out


class FairnessTally:
    """Decisions, approvals and summed probability of default per (segment, group), since it was made."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.decisions = {s.name: np.zeros(len(s.groups), np.int64) for s in segments}
        self.approvals = {s.name: np.zeros(len(s.groups), np.int64) for s in segments}
        self.pd_sum = {s.name: np.zeros(len(s.groups), np.float64) for s in segments}

    def fold(self, matrix: np.ndarray, approved: np.ndarray, probabilities: np.ndarray) -> None:
        """Add one batch: its assembled matrix, approved (bool) and probability of each row."""
        for s in self.segments:
            codes = s.codes(matrix)
            n = len(s.groups)
            self.decisions[s.name] += np.bincount(codes, minlength=n)
            self.approvals[s.name] += np.bincount(
                codes, weights=approved.astype(np.float64), minlength=n
            ).astype(np.int64)
            self.pd_sum[s.name] += np.bincount(codes, weights=probabilities, minlength=n)

    def approval_rate(self, segment: str) -> np.ndarray:
        d = self.decisions[segment]
        return np.divide(self.approvals[segment], d, out=np.full(len(d), np.nan), where=d > 0)

    def mean_probability(self, segment: str) -> np.ndarray:
        d = self.decisions[segment]
        return np.divide(self.pd_sum[segment], d, out=np.full(len(d), np.nan), where=d > 0)

    def disparate_impact(self, segment: str, min_decisions: int) -> float | None:
        rates = self.approval_rate(segment)[:-1]  # unknown is not a group to compare
        enough = self.decisions[segment][:-1] >= max(1, min_decisions)
        if int(enough.sum()) < 2:
            return None
        top = float(rates[enough].max())
        return float(rates[enough].min()) / top if top > 0 else None
