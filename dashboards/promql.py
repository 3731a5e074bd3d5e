"""What a live Prometheus must be able to answer: the panel queries and the alerts' signals.

Pure helpers (no I/O) used by :mod:`dashboards.verify` and the integration tests:

* :func:`panel_queries` lists every Prometheus target of a generated dashboard JSON, with the labels its
  legend template needs and its format;
* :func:`expand_grafana_variables` replaces Grafana's built-in interval variables by concrete windows;
* :func:`alert_signals` reduces an alert expression to the series it compares. An alert is normally
  silent, so evaluating it says nothing; evaluating its signals does: in a healthy system each signal
  must return data (a latency, a ratio, a lag, a PSI, an ``up``), and the alert only adds a threshold.
  The reduction follows PromQL precedence: split on the lowest-precedence set operators (``or``, then
  ``and`` / ``unless``) at top level, then drop every top-level comparison against a number literal
  (``x > 0.25`` → ``x``), and look through ``absent(x)`` (→ ``x``). What remains are the signals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MODIFIER = re.compile(
    r"^(bool\s+)?((on|ignoring)\s*\([^)]*\)\s*)?((group_left|group_right)\s*(\([^)]*\))?\s*)?"
)
_GRAFANA_VARIABLE = re.compile(r"\$\{?__[a-z_]+\}?|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    legend_labels: frozenset[str]
    format: str  # time_series | heatmap | table
    instant: bool

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def legend_labels(legend: str | None) -> frozenset[str]:
    """Label names a legend template such as ``{{topic}}/{{partition}}`` reads."""
    return frozenset(_LEGEND_LABEL.findall(legend or ""))


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every Prometheus target of a dashboard JSON (rows' nested panels included)."""
    out: list[PanelQuery] = []
    title = str(dashboard.get("uid") or dashboard.get("title"))

    def visit(panels: Iterable[Mapping[str, Any]]) -> None:
        for panel in panels:
            visit(panel.get("panels") or [])
            for target in panel.get("targets") or []:
                if not target.get("expr"):
                    continue
                out.append(
                    PanelQuery(
                        dashboard=title,
                        panel=str(panel.get("title")),
                        ref_id=str(target.get("refId", "A")),
                        expr=str(target["expr"]),
                        legend_labels=legend_labels(target.get("legendFormat")),
                        format=str(target.get("format") or "time_series"),
                        instant=bool(target.get("instant")) and not target.get("range"),
                    )
                )

    visit(dashboard.get("panels") or [])
    return out


def expand_grafana_variables(expr: str, rate_interval: str, interval: str | None = None) -> str:
    """Replace ``$__rate_interval`` / ``$__interval`` / ``$__range``; reject any other variable."""
    values = {
        "__rate_interval": rate_interval,
        "__interval": interval or rate_interval,
        "__range": rate_interval,
    }

    def sub(match: re.Match[str]) -> str:
        name = match.group(0).lstrip("$").strip("{}")
        if name not in values:
            raise ValueError(f"query uses the variable {match.group(0)!r}, unknown outside Grafana: {expr}")
        return values[name]

    return _GRAFANA_VARIABLE.sub(sub, expr)


# --- alert expressions ---------------------------------------------------------------------------
def _top_level_positions(expr: str) -> list[int]:
    """Indexes of the characters of ``expr`` outside (), {}, [] and string literals."""
    depth, quote, out = 0, "", []
    for i, ch in enumerate(expr):
        if quote:
            if ch == quote and expr[i - 1] != "\\":
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0:
            out.append(i)
    return out


def _strip_parens(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        inner = expr[1:-1]
        # only when the outer parentheses enclose everything: inner has balanced top level
        depth = 0
        for ch in inner:
            depth += ch == "("
            depth -= ch == ")"
            if depth < 0:
                return expr
        expr = inner.strip()
    return expr


def _split_keyword(expr: str, keywords: tuple[str, ...]) -> list[str]:
    top = set(_top_level_positions(expr))
    parts, start, i = [], 0, 0
    while i < len(expr):
        for kw in keywords:
            end = i + len(kw)
            if (
                i in top
                and expr[i:end] == kw
                and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:"))
                and (end >= len(expr) or not (expr[end].isalnum() or expr[end] in "_:"))
            ):
                parts.append(expr[start:i])
                start = i = end
                break
        else:
            i += 1
    parts.append(expr[start:])
    return [_MODIFIER.sub("", p.strip(), count=1).strip() for p in parts]


def _split_comparison(expr: str) -> tuple[str, str] | None:
    """Split at the first top-level comparison operator (``==``, ``!=``, ``>=``, ``<=``, ``>``, ``<``)."""
    for i in _top_level_positions(expr):
        width = 2 if expr[i : i + 2] in ("==", "!=", ">=", "<=") else 1 if expr[i] in "<>" else 0
        if width:
            rhs = _MODIFIER.sub("", expr[i + width :].strip(), count=1)
            return expr[:i].strip(), rhs.strip()
    return None


def alert_signals(expr: str) -> list[str]:
    """The series an alert expression compares (module docstring); never empty for a valid alert."""
    signals: list[str] = []
    for disjunct in _split_keyword(_strip_parens(expr), ("or",)):
        for part in _split_keyword(_strip_parens(disjunct), ("and", "unless")):
            part = _strip_parens(part)
            split = _split_comparison(part)
            sides = [part] if split is None else [s for s in split if not _NUMBER.match(_strip_parens(s))]
            for side in sides:
                side = _strip_parens(side)
                absent = re.fullmatch(r"absent\s*\((.*)\)", side, flags=re.S)
                if absent:
                    side = _strip_parens(absent.group(1))
                if side and side not in signals:
                    signals.append(side)
    if not signals:
        raise ValueError(f"alert expression compares no series: {expr}")
    return signals


def alert_rules(rules_document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(alert name, expr)`` of every alerting rule of a Prometheus rules document."""
    return [
        (str(rule["alert"]), str(rule["expr"]))
        for group in rules_document.get("groups", [])
        for rule in group.get("rules", [])
        if "alert" in rule
    ]
