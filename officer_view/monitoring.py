"""The monitoring page, for where Grafana does not run: decisions/s, latency percentiles, approval rate,
score distribution, dead letters and lag, from the API's and the workers' /metrics; the history lives in
this server's memory (one :class:`MetricsHistory` shared by every session) and refreshes itself."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from officer_view import charts
from officer_view.api_client import ApiCallError, ApiClient
from officer_view.metrics_history import MetricsHistory, Snapshot, score_distribution


@st.cache_resource
def _history(_key: str) -> MetricsHistory:
    return MetricsHistory()


def scrape(api: ApiClient, urls: list[str]) -> Snapshot:
    import httpx

    pages, errors = [], []
    try:
        pages.append(api.metrics_text())
    except ApiCallError as exc:
        errors.append(str(exc))
    for url in urls:
        try:
            response = httpx.get(url, timeout=api.timeout_s)
            response.raise_for_status()
            pages.append(response.text)
        except httpx.HTTPError as exc:
            errors.append(f"{url}: {type(exc).__name__}")
    snap = Snapshot.parse(pages)
    snap.errors = errors
    return snap


def _frame(history: MetricsHistory, columns: dict[str, str]) -> pd.DataFrame:
    rows = []
    for p in history.points:
        for key, series in columns.items():
            if p.get(key) is not None:
                rows.append({"time": pd.to_datetime(p["time"], unit="s"), "value": p[key], "series": series})
    return pd.DataFrame(rows, columns=["time", "value", "series"])


def render(api: ApiClient, urls: list[str], refresh_s: float) -> None:
    st.title("Monitoring")
    history = _history(",".join([api.base_url, *urls]))

    @st.fragment(run_every=refresh_s)
    def live() -> None:
        snap = scrape(api, urls)
        point = history.observe(snap)
        for error in snap.errors:
            st.warning(f"metrics not read: {error}")
        a, b, c, d = st.columns(4)
        a.metric("Decisions/s", _fmt(point.get("decisions_per_s"), "{:.1f}"))
        b.metric("Approval rate", _fmt(point.get("approval_rate"), "{:.1%}"))
        c.metric("Dead letters", _fmt(point.get("dead_letters_total"), "{:.0f}"))
        d.metric(
            "Lag (records)", _fmt((point.get("worker_lag") or 0) + (point.get("store_lag") or 0), "{:.0f}")
        )
        st.altair_chart(
            charts.line(_frame(history, {"decisions_per_s": "decisions/s"}), "value", "Decisions/s"),
            width="stretch",
        )
        latency = {f"{w}_p{q}_ms": f"{w} p{q}" for w in ("worker", "api") for q in (50, 95, 99)}
        st.altair_chart(charts.line(_frame(history, latency), "value", "Latency (ms)"), width="stretch")
        st.altair_chart(
            charts.line(_frame(history, {"approval_rate": "approval"}), "value", "Approval rate", "%"),
            width="stretch",
        )
        dist = pd.DataFrame(score_distribution(snap), columns=["P(default)", "decisions"])
        st.altair_chart(charts.bars(dist, "P(default)", "decisions", "Score distribution"), width="stretch")
        lag = {"worker_lag": "workers", "store_lag": "store sink", "dead_letters_per_s": "dead letters/s"}
        st.altair_chart(charts.line(_frame(history, lag), "value", "Lag and dead letters"), width="stretch")
        st.caption(f"{len(history.points)} points in memory, every {refresh_s:g} s")

    live()


def _fmt(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)
