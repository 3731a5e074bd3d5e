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

Reports (the training report, the replay report) use the same segments and ratio
(:func:`fairness_report`, :func:`tally_report`): every family is named, one whose column is absent
reported ``"unavailable"``; a replay stores each row's group names and folds them back
(:func:`labelled_segments`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
        self.fold_codes([s.codes(matrix) for s in self.segments], approved, probabilities)

    def fold_codes(
        self, codes_by_segment: Sequence[np.ndarray], approved: np.ndarray, probabilities: np.ndarray
    ) -> None:
        """:meth:`fold` from each segment's group codes (:meth:`Segment.codes`), in segment order."""
        for s, codes in zip(self.segments, codes_by_segment, strict=True):
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


# --- reports (training, replay): the same segments and ratio as the live metric, as a document ---------
FOUR_FIFTHS = 0.8
# every segment family a report names, with the column it needs: one absent from a schema (or from a
# report's rows) is reported "unavailable", never left out silently
FAMILIES: tuple[tuple[str, str], ...] = (
    ("gender", "CODE_GENDER"),
    ("age_band", "DAYS_BIRTH"),
    ("contract_type", "NAME_CONTRACT_TYPE"),
    ("income_band", "AMT_INCOME_TOTAL"),
)
_ORDERED = {"age_band": AGE_GROUPS, "income_band": INCOME_GROUPS}


def tally_report(tally: FairnessTally, min_decisions: int) -> dict[str, Any]:
    """The figures of ``tally`` by family: per group decisions, approvals, approval rate and mean
    probability of default (groups without a decision left out), the disparate-impact ratio and whether
    it is below four fifths (None when fewer than two groups have ``min_decisions``)."""
    by_name = {s.name: s for s in tally.segments}
    segments: dict[str, Any] = {}
    for family, column in FAMILIES:
        s = by_name.get(family)
        if s is None:
            segments[family] = {"column": column, "status": "unavailable", "groups": {}}
            segments[family].update(disparate_impact=None, below_four_fifths=None)
            continue
        d, a = tally.decisions[family], tally.approvals[family]
        rates, means = tally.approval_rate(family), tally.mean_probability(family)
        groups = {
            group: {
                "decisions": int(d[g]),
                "approvals": int(a[g]),
                "approval_rate": float(rates[g]),
                "mean_probability": float(means[g]),
            }
            for g, group in enumerate(s.groups)
            if d[g]
        }
        ratio = tally.disparate_impact(family, min_decisions)
        segments[family] = {
            "column": column,
            "status": "ok",
            "groups": groups,
            "disparate_impact": ratio,
            "below_four_fifths": None if ratio is None else ratio < FOUR_FIFTHS,
        }
    rows = int(next(iter(tally.decisions.values())).sum()) if tally.decisions else None
    return {"rows": rows, "min_group_decisions": min_decisions, "segments": segments}


def fairness_report(
    schema: FeatureSchema,
    matrix: np.ndarray,
    approved: np.ndarray,
    probabilities: np.ndarray,
    min_decisions: int,
) -> dict[str, Any]:
    """:func:`tally_report` of rows in ``schema`` order (assembled vectors or a feature build's rows)."""
    tally = FairnessTally(segments_for(schema))
    tally.fold(matrix, np.asarray(approved, dtype=bool), np.asarray(probabilities, dtype=np.float64))
    report = tally_report(tally, min_decisions)
    report["rows"] = int(matrix.shape[0])
    return report


def group_labels(segment: Segment, matrix: np.ndarray) -> list[str]:
    """The group of each row, by name (what a report stores per row)."""
    return [segment.groups[c] for c in segment.codes(matrix).tolist()]


def labelled_segments(labels: Mapping[str, Sequence[str | None]]) -> tuple[list[Segment], np.ndarray]:
    """Segments over stored group names (:func:`group_labels`), and the matrix of their group indexes:
    a :class:`FairnessTally` folds it like assembled vectors. A family whose names are all missing
    (its column was not in the model's schema) is left out, so it reports "unavailable"."""
    segments: list[Segment] = []
    columns: list[np.ndarray] = []
    for family, values in labels.items():
        present = {v for v in values if v is not None}
        if not present:
            continue
        known = _ORDERED.get(family) or tuple(sorted(present - {UNKNOWN}))
        groups = (*known, *sorted(present - set(known) - {UNKNOWN}), UNKNOWN)
        index = {g: i for i, g in enumerate(groups)}
        segments.append(Segment(family, len(columns), groups, None))
        columns.append(np.array([index[UNKNOWN if v is None else v] for v in values], dtype=np.float64))
    n = len(next(iter(labels.values()), []))
    matrix = np.column_stack(columns) if columns else np.zeros((n, 0))
    return segments, matrix
