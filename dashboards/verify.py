"""Check the dashboards and alerts against a live Prometheus: no empty panel, no query error.

For every panel target of the generated dashboards (:func:`dashboards.promql.panel_queries`) the query
is run as Grafana would (range query, or instant for table targets, ``$__rate_interval`` expanded) and
its result must have the expected shape:

* no error, at least one series;
* every series has at least one finite value (a panel of NaN is an empty panel);
* every label the legend template names (``{{stage}}``, ``{{topic}}/{{partition}}``) is on every series;
* heatmap targets return ``le`` buckets (at least two).

For every alerting rule, each signal (:func:`dashboards.promql.alert_signals`) must return at least one
finite sample now — the alert itself is normally silent — and every rule loaded by Prometheus must
evaluate without error (``/api/v1/rules`` health ``ok``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from dashboards.promql import PanelQuery, alert_rules, alert_signals, expand_grafana_variables, panel_queries

_NEVER = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Check:
    kind: str  # panel | alert-signal | rule
    name: str
    expr: str
    problem: str | None  # None = ok

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        status = "ok" if self.ok else f"FAIL: {self.problem}"
        return f"[{self.kind}] {self.name}: {status}\n    {self.expr}"


class PrometheusAPI:
    """Minimal client of Prometheus's HTTP API."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **params: Any) -> Any:
        body = self._client.get(f"/api/v1/{path}", params=params).json()
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]


class QueryError(Exception):
    """Prometheus rejected or failed a query."""


def _finite(value: Sequence[Any]) -> bool:
    return math.isfinite(float(value[1]))


def series_problem(result: list[dict[str, Any]], query: PanelQuery | None, matrix: bool) -> str | None:
    if not result:
        return "no series"
    for series in result:
        labels = series.get("metric", {})
        values = series.get("values", []) if matrix else [series.get("value")]
        if not any(v and _finite(v) for v in values):
            return f"series {labels} has no finite value"
        if query is not None:
            missing = query.legend_labels - set(labels)
            if missing:
                return f"series {labels} lacks the legend label(s) {sorted(missing)}"
    if query is not None and query.format == "heatmap":
        buckets = {s["metric"].get("le") for s in result}
        if None in buckets or len(buckets) < 2:
            return f"heatmap needs le buckets, got {sorted(map(str, buckets))}"
    return None


def check_panel(api: PrometheusAPI, query: PanelQuery, start: float, end: float, rate_interval: str) -> Check:
    expr = expand_grafana_variables(query.expr, rate_interval)
    try:
        if query.instant or query.format == "table":
            data = api.get("query", query=expr, time=end)
            problem = series_problem(data["result"], query, matrix=False)
        else:
            data = api.get("query_range", query=expr, start=start, end=end, step=1)
            problem = series_problem(data["result"], query, matrix=True)
    except (QueryError, httpx.HTTPError) as exc:
        problem = f"query error: {exc}"
    return Check("panel", query.name, expr, problem)


def check_alert_signals(api: PrometheusAPI, alert: str, expr: str, at: float | None = None) -> list[Check]:
    out = []
    for signal in alert_signals(expr):
        try:
            params = {"query": signal} if at is None else {"query": signal, "time": at}
            problem = series_problem(api.get("query", **params)["result"], None, matrix=False)
        except (QueryError, httpx.HTTPError) as exc:
            problem = f"query error: {exc}"
        out.append(Check("alert-signal", alert, signal, problem))
    return out


def check_rules_health(api: PrometheusAPI, expected: Iterable[str]) -> list[Check]:
    loaded = {str(rule.get("name")): rule for group in api.get("rules")["groups"] for rule in group["rules"]}
    out = []
    for name in expected:
        rule = loaded.get(name)
        if rule is None:
            out.append(Check("rule", name, "", "not loaded by Prometheus"))
            continue
        problem = None
        if rule.get("health") != "ok":
            problem = f"health {rule.get('health')}: {rule.get('lastError')}"
        elif str(rule.get("lastEvaluation", _NEVER)).startswith("0001-"):
            problem = "not evaluated yet"
        out.append(Check("rule", name, str(rule.get("query")), problem))
    return out


def verify(
    url: str,
    dashboards: Iterable[Mapping[str, Any]],
    rules_document: Mapping[str, Any],
    *,
    window_s: float = 300.0,
    rate_interval: str = "1m",
    end: float | None = None,
) -> list[Check]:
    """Every check (see module docstring) against the Prometheus at ``url``."""
    api = PrometheusAPI(url)
    try:
        end = time.time() if end is None else end
        start = end - window_s
        checks = [
            check_panel(api, q, start, end, rate_interval) for d in dashboards for q in panel_queries(d)
        ]
        for alert, expr in alert_rules(rules_document):
            checks += check_alert_signals(api, alert, expr, at=end)
        names = [
            str(rule.get("alert") or rule.get("record"))
            for group in rules_document.get("groups", [])
            for rule in group.get("rules", [])
        ]
        checks += check_rules_health(api, names)
        return checks
    finally:
        api.close()
