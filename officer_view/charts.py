"""Altair charts of the pages (pure: data in, chart out; Streamlit renders them)."""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

_GREEN, _RED, _INK = "#2e7d32", "#c62828", "#212121"


def gauge(probability: float, threshold: float) -> alt.LayerChart:
    """A half-ring from 0 to 1: approval zone (below the threshold) green, refusal zone red, and a
    dark tick at the client's probability of default."""

    def angle(p: float) -> float:
        return -math.pi / 2 + math.pi * min(max(p, 0.0), 1.0)

    zones = pd.DataFrame(
        [
            {"zone": "approve", "start": angle(0.0), "end": angle(threshold), "color": _GREEN},
            {"zone": "refuse", "start": angle(threshold), "end": angle(1.0), "color": _RED},
        ]
    )
    tick = pd.DataFrame([{"start": angle(probability) - 0.02, "end": angle(probability) + 0.02}])
    ring = (
        alt.Chart(zones)
        .mark_arc(innerRadius=70, outerRadius=110, opacity=0.8)
        .encode(
            theta=alt.Theta("start:Q", scale=None), theta2="end:Q", color=alt.Color("color:N", scale=None)
        )
    )
    needle = (
        alt.Chart(tick)
        .mark_arc(innerRadius=55, outerRadius=120, color=_INK)
        .encode(theta=alt.Theta("start:Q", scale=None), theta2="end:Q")
    )
    label = alt.Chart(pd.DataFrame([{"t": f"P(default) {probability:.1%} · threshold {threshold:.1%}"}]))
    text = label.mark_text(dy=20, fontSize=14).encode(text="t:N")
    chart = alt.layer(ring, needle, text).properties(width=260, height=150, title="Probability of default")
    assert isinstance(chart, alt.LayerChart)
    return chart


def population(name: str, hist: dict[str, Any], value: float | None) -> alt.LayerChart:
    """The training population's histogram of a feature, the client's value as a red rule."""
    edges = [float(e) for e in hist.get("edges", [])]
    shares = [float(p) for p in hist.get("proportions", [])]
    if not edges:
        edges = [0.0]
    width = (edges[-1] - edges[0]) / max(1, len(edges) - 1) or 1.0
    bounds = [edges[0] - width, *edges, edges[-1] + width]
    bins = pd.DataFrame({"low": bounds[:-1], "high": bounds[1:], "share": shares[: len(bounds) - 1]})
    bars = (
        alt.Chart(bins)
        .mark_bar(color="#90a4ae")
        .encode(
            x=alt.X("low:Q", title=name),
            x2="high:Q",
            y=alt.Y("share:Q", title="share", axis=alt.Axis(format=".0%")),
        )
    )
    layers: list[Any] = [bars]
    if value is not None:
        clipped = min(max(value, bounds[0]), bounds[-1])
        marker = pd.DataFrame([{"x": clipped, "label": f"client: {value:g}"}])
        layers.append(alt.Chart(marker).mark_rule(color=_RED, size=3).encode(x="x:Q"))
        layers.append(
            alt.Chart(marker)
            .mark_text(color=_RED, dy=-5, align="left", dx=4, y=0)
            .encode(x="x:Q", text="label:N")
        )
    chart = alt.layer(*layers).properties(height=160, title=name)
    assert isinstance(chart, alt.LayerChart)
    return chart


def line(frame: pd.DataFrame, y: str, title: str, fmt: str = "") -> alt.Chart:
    """A time series (columns ``time`` and ``y``; a ``series`` column draws one line per value)."""
    color = alt.Color("series:N") if "series" in frame.columns else alt.value("#1565c0")
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("time:T", title=None),
            y=alt.Y(f"{y}:Q", title=title, axis=alt.Axis(format=fmt)),
            color=color,
        )
        .properties(height=180, title=title)
    )


def bars(frame: pd.DataFrame, x: str, y: str, title: str) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_bar(color="#5c6bc0")
        .encode(x=alt.X(f"{x}:O", title=x), y=alt.Y(f"{y}:Q", title=y))
        .properties(height=180, title=title)
    )
