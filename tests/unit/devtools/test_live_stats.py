"""Pure statistics of the live view: percentiles, rate windows, snapshot counts (property tests)."""

from __future__ import annotations

import io
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.demo.live_stats import (
    LatencyWindow,
    LiveStats,
    RateWindow,
    fold_dead_letter,
    fold_decision,
    percentile,
)
from devtools.demo.live_view import LiveDisplay, format_line

finite = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=1, max_size=300), st.floats(min_value=0.0, max_value=100.0))
def test_percentile_is_nearest_rank(values: list[float], q: float) -> None:
    ordered = sorted(values)
    p = percentile(ordered, q)
    assert p in ordered
    # at least q % of the values are <= p, and fewer than q % are strictly below it
    at_or_below = sum(v <= p for v in ordered)
    below = sum(v < p for v in ordered)
    assert at_or_below >= q / 100.0 * len(ordered) - 1e-9
    assert below < max(q / 100.0 * len(ordered), 1)


@given(st.lists(finite, min_size=1, max_size=300))
def test_percentiles_monotone_and_match_numpy(values: list[float]) -> None:
    window = LatencyWindow(maxlen=1000)
    for v in values:
        window.add(v)
    p50, p95, p99 = window.percentiles((50, 95, 99))
    assert min(values) <= p50 <= p95 <= p99 <= max(values)
    expected = np.percentile(np.array(values), [50, 95, 99], method="inverted_cdf")
    assert (p50, p95, p99) == tuple(float(x) for x in expected)


def test_percentile_edges() -> None:
    assert math.isnan(percentile([], 50))
    assert percentile([3.0], 0) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], 101)


@given(st.lists(finite, min_size=1, max_size=200), st.integers(min_value=1, max_value=50))
def test_latency_window_keeps_only_the_last_values(values: list[float], maxlen: int) -> None:
    window = LatencyWindow(maxlen=maxlen)
    for v in values:
        window.add(v)
    window.add(math.nan)  # ignored
    kept = values[-maxlen:]
    assert len(window) == len(kept)
    assert window.percentiles((100,)) == (max(kept),)
    assert window.percentiles((0,)) == (min(kept),)


@given(
    st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=100.0), st.integers(min_value=0, max_value=50)),
        min_size=1,
        max_size=200,
    ),
    st.floats(min_value=0.1, max_value=20.0),
)
@settings(max_examples=200)
def test_rate_window_counts_exactly_the_window(obs: list[tuple[float, int]], window_s: float) -> None:
    obs = sorted(obs)
    rate = RateWindow(window_s)
    for t, n in obs:
        rate.add(t, n)
    now = obs[-1][0]
    expected = sum(n for t, n in obs if now - window_s < t <= now)
    assert rate.count(now) == expected
    r = rate.rate(now)
    assert r >= 0
    if expected:
        span = min(window_s, max(now - obs[0][0], 1e-3))
        assert r == pytest.approx(expected / span)
    # later, everything has left the window
    assert rate.count(now + window_s + 1) == 0
    assert rate.rate(now + window_s + 1) == 0.0


def test_steady_stream_rate() -> None:
    rate = RateWindow(5.0)
    for i in range(20_000):  # 2,000/s for 10 s
        rate.add(i / 2000.0)
    assert rate.rate(10.0) == pytest.approx(2000.0, rel=0.01)


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            finite,
            st.sampled_from(["EXT_SOURCE_2", "AMT_CREDIT", "DAYS_BIRTH"]),
            st.integers(0, 30),
        ),
        max_size=200,
    ),
    st.lists(st.sampled_from(["bad_json", "schema", "oversized"]), max_size=20),
)
def test_snapshot_counts(events: list[tuple[bool, float, str, int]], dlq: list[str]) -> None:
    stats = LiveStats(started_at=100.0, expected_total=1000)
    distinct: dict[str, tuple[bool, str]] = {}
    for i, (approved, lat, reason, app) in enumerate(events):
        stats.observe_decision(
            100.0 + i * 0.01, approved=approved, latency_s=lat, reasons=[reason], application_id=f"a{app}"
        )
        distinct.setdefault(f"a{app}", (approved, reason))
    for kind in dlq:
        stats.observe_dead_letter(101.0, kind)
    snap = stats.snapshot(105.0)
    approvals = sum(a for a, _ in distinct.values())
    assert snap.decisions == len(distinct)
    assert stats.duplicates == len(events) - len(distinct)
    assert snap.approvals == approvals and snap.refusals == len(distinct) - approvals
    assert snap.dead_letters == len(dlq) and snap.handled == len(distinct) + len(dlq)
    assert sum(n for _, n in snap.top_refusal_reasons) <= snap.refusals
    counts = [n for _, n in snap.top_refusal_reasons]
    assert counts == sorted(counts, reverse=True)
    if distinct:
        assert snap.approval_rate == pytest.approx(approvals / len(distinct))
    else:
        assert math.isnan(snap.approval_rate)
    assert snap.elapsed_s == pytest.approx(5.0)


def test_fold_decision_reads_the_decision_record() -> None:
    stats = LiveStats(started_at=0.0)
    refus = {
        "application_id": "x1",
        "decision": "REFUS",
        "reasons": [{"feature": "EXT_SOURCE_3", "value": 0.1, "contribution": 0.8}],
        "latency": {"total_s": 0.004, "queue_s": 0.003},
    }
    assert fold_decision(stats, 1.0, orjson.dumps(refus))  # a version 1 record: feature names
    code = {"code": "R01_EXTERNAL_SCORES", "text": "Scores are low.", "contribution": 0.8, "features": []}
    refer = {"application_id": "x3", "decision": "REFER", "reason_codes": [code], "latency": {"total_s": 0.0}}
    assert fold_decision(stats, 1.0, orjson.dumps(refer))  # version 2: the code and its text
    assert fold_decision(stats, 1.0, orjson.dumps({"application_id": "x2", "decision": "ACCORD"}))
    assert not fold_decision(stats, 1.0, b"{not json")
    assert not fold_decision(stats, 1.0, b"[1, 2]")
    fold_dead_letter(stats, 1.0, orjson.dumps({"error_kind": "bad_json"}))
    fold_dead_letter(stats, 1.0, b"\xff")
    snap = stats.snapshot(2.0)
    assert (snap.decisions, snap.approvals, snap.dead_letters) == (3, 1, 2)
    assert snap.top_refusal_reasons == (("EXT_SOURCE_3", 1), ("R01_EXTERNAL_SCORES: Scores are low.", 1))
    assert dict(snap.dead_letter_kinds) == {"bad_json": 1, "unreadable": 1}
    assert snap.p99_s == pytest.approx(0.004)
    # the worker's own part: event → built minus the wait in the topic (only where both are known)
    assert snap.worker_p99_s == pytest.approx(0.001)
    assert "worker p50 1.0 ms p99 1.0 ms" in format_line(snap)


def test_plain_display_prints_periodic_lines() -> None:
    now = [0.0]
    stats = LiveStats(started_at=0.0, expected_total=10)
    out = io.StringIO()
    display = LiveDisplay(stats, interactive=False, plain_every_s=2.0, clock=lambda: now[0], out=out)
    with display:
        for i in range(10):
            now[0] = i * 0.5
            stats.observe_decision(now[0], approved=i % 2 == 0, latency_s=0.002, reasons=["AMT_CREDIT"])
            display.refresh()
        display.refresh(force=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4  # at t=0, 2, 4 and the forced final line
    assert "handled 10/10 (100 %)" in lines[-1]
    assert "approval 50.0%" in lines[-1]
    assert "AMT_CREDIT=5" in lines[-1]
    assert format_line(stats.snapshot(5.0)).startswith("[   5.0s]")


def test_duplicates_are_counted_once_within_the_dedupe_window() -> None:
    stats = LiveStats(started_at=0.0, dedupe_window=3)
    for app in ["a", "b", "a", "c", "d", "a"]:  # "a" leaves the window after "d"
        stats.observe_decision(1.0, approved=True, latency_s=0.001, application_id=app)
    assert stats.duplicates == 1
    assert stats.decisions == 5
    stats.reset(10.0)
    snap = stats.snapshot(10.0)
    assert (snap.decisions, snap.elapsed_s, stats.duplicates) == (0, 0.0, 0)
    stats.observe_decision(10.5, approved=False, latency_s=0.002, application_id="a")
    assert stats.decisions == 1  # the reset forgot the ids too


@pytest.mark.parametrize(
    ("tty", "ci", "expected"), [(True, "", True), (True, "true", False), (False, "", False)]
)
def test_interactive_only_on_a_terminal_outside_ci(
    monkeypatch: pytest.MonkeyPatch, tty: bool, ci: str, expected: bool
) -> None:
    from devtools.demo.live_view import is_interactive

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    monkeypatch.setenv("CI", ci)
    assert is_interactive(Stream()) is expected
