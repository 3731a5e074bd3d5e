"""The shape rules of dashboards.verify, on hand-made Prometheus results (pure logic, no server)."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.promql import PanelQuery
from dashboards.verify import series_problem


def _query(legend: frozenset[str] = frozenset(), fmt: str = "time_series") -> PanelQuery:
    return PanelQuery("d", "p", "A", "x", legend, fmt, instant=False)


def _matrix(*series: tuple[dict[str, str], list[str]]) -> list[dict[str, Any]]:
    return [{"metric": m, "values": [[1.0 + i, v] for i, v in enumerate(vals)]} for m, vals in series]


def test_a_panel_with_data_and_its_legend_labels_passes() -> None:
    result = _matrix(({"stage": "queue"}, ["NaN", "0.002"]), ({"stage": "features"}, ["0.001"]))
    assert series_problem(result, _query(frozenset({"stage"})), matrix=True) is None


@pytest.mark.parametrize(
    ("result", "query", "problem"),
    [
        ([], _query(), "no series"),
        (_matrix(({"a": "1"}, ["NaN", "NaN"])), _query(), "has no finite value"),
        (_matrix(({"a": "1"}, ["+Inf"])), _query(), "has no finite value"),
        (
            _matrix(({"topic": "t"}, ["3"])),
            _query(frozenset({"topic", "partition"})),
            "lacks the legend label",
        ),
        (
            _matrix(({"x": "1"}, ["3"]), ({"x": "2"}, ["4"])),
            _query(fmt="heatmap"),
            "heatmap needs le buckets",
        ),
        (_matrix(({"le": "0.05"}, ["3"])), _query(fmt="heatmap"), "heatmap needs le buckets"),
    ],
)
def test_empty_or_misshapen_results_are_reported(
    result: list[dict[str, Any]], query: PanelQuery, problem: str
) -> None:
    found = series_problem(result, query, matrix=True)
    assert found is not None and problem in found


def test_instant_vectors_are_checked_the_same_way() -> None:
    assert (
        series_problem([{"metric": {"feature": "score"}, "value": [1.0, "0.3"]}], None, matrix=False) is None
    )
    assert series_problem([{"metric": {}, "value": [1.0, "NaN"]}], None, matrix=False) is not None
