"""The monitoring page's figures from Prometheus text pages (the API's, the workers', the sink's), with
their history kept in memory: each scrape is a :class:`Snapshot`; rates and latency percentiles come
from the difference of two consecutive snapshots (counters and histogram buckets only ever grow)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Labels = dict[str, str]


@dataclass
class Snapshot:
    at: float
    samples: dict[str, list[tuple[Labels, float]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, pages: Iterable[str], at: float | None = None) -> Snapshot:
        snap = cls(time.time() if at is None else at)
        for page in pages:
            for family in text_string_to_metric_families(page):
                for s in family.samples:
                    snap.samples.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        return snap

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples named ``name`` whose labels include ``match``."""
        return sum(
            v for labels, v in self.samples.get(name, []) if all(labels.get(k) == w for k, w in match.items())
        )

    def buckets(self, name: str, **match: str) -> list[tuple[float, float]]:
        """Cumulative (upper bound, count) of a histogram, summed over its series."""
        acc: dict[float, float] = {}
        for labels, v in self.samples.get(f"{name}_bucket", []):
            if all(labels.get(k) == w for k, w in match.items()):
                le = float(labels["le"])
                acc[le] = acc.get(le, 0.0) + v
        return sorted(acc.items())


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q·n."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside > 0 else 0.0)
        lower, below = upper, count
    return lower


def _delta(cur: list[tuple[float, float]], prev: list[tuple[float, float]]) -> list[tuple[float, float]]:
    before = dict(prev)
    return [(le, max(0.0, c - before.get(le, 0.0))) for le, c in cur]


DECISIONS = "credit_scorer_decisions_total"
WORKER_LATENCY = "credit_scorer_stage_seconds"
API_LATENCY = "credit_scorer_api_request_seconds"
CHAMPION = {"role": "champion"}  # the decisions published; a challenger's (shadow) are not the lender's


def derive(cur: Snapshot, prev: Snapshot | None) -> dict[str, float | None]:
    """One point of every time series: rates over (prev, cur], percentiles of the events in it."""
    dt = cur.at - prev.at if prev is not None else 0.0
    base = prev if prev is not None else Snapshot(cur.at)

    def rate(name: str, **match: str) -> float | None:
        if dt <= 0:
            return None
        return max(0.0, cur.total(name, **match) - base.total(name, **match)) / dt

    decided = (cur.total(DECISIONS, **CHAMPION) - base.total(DECISIONS, **CHAMPION)) + (
        cur.total(f"{API_LATENCY}_count", route="/predict", status="2xx")
        - base.total(f"{API_LATENCY}_count", route="/predict", status="2xx")
    )
    accord = cur.total(DECISIONS, decision="ACCORD", **CHAMPION) - base.total(
        DECISIONS, decision="ACCORD", **CHAMPION
    )
    worker_total = cur.total(DECISIONS, **CHAMPION) - base.total(DECISIONS, **CHAMPION)
    worker = _delta(cur.buckets(WORKER_LATENCY, stage="total"), base.buckets(WORKER_LATENCY, stage="total"))
    api = _delta(cur.buckets(API_LATENCY, route="/predict"), base.buckets(API_LATENCY, route="/predict"))
    point: dict[str, float | None] = {
        "decisions_per_s": decided / dt if dt > 0 else None,
        "approval_rate": accord / worker_total if worker_total > 0 else None,
        "dead_letters_total": cur.total("credit_scorer_dead_letters_total"),
        "dead_letters_per_s": rate("credit_scorer_dead_letters_total"),
        "worker_lag": cur.total("credit_scorer_consumer_lag"),
        "store_lag": cur.total("credit_scorer_store_consumer_lag"),
        "store_rejected_total": cur.total("credit_scorer_store_records_total", outcome="rejected"),
    }
    for q in (0.5, 0.95, 0.99):
        point[f"worker_p{int(q * 100)}_ms"] = _ms(quantile(worker, q))
        point[f"api_p{int(q * 100)}_ms"] = _ms(quantile(api, q))
    return point


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def score_distribution(snap: Snapshot) -> list[tuple[str, float]]:
    """(bin, decisions) of the probability of default since the workers started."""
    out: list[tuple[str, float]] = []
    lower, below = 0.0, 0.0
    for upper, count in snap.buckets("credit_scorer_default_probability", **CHAMPION):
        if math.isinf(upper):
            break
        out.append((f"{lower:.2f}-{upper:.2f}", count - below))
        lower, below = upper, count
    return out


class MetricsHistory:
    """The last ``maxlen`` points; ``observe`` adds one from a new snapshot."""

    def __init__(self, maxlen: int = 900) -> None:
        self.points: deque[dict[str, float | None]] = deque(maxlen=maxlen)
        self.last: Snapshot | None = None

    def observe(self, snap: Snapshot) -> dict[str, float | None]:
        point = derive(snap, self.last)
        point["time"] = snap.at
        if self.last is not None:  # the first scrape has no interval: rates start with the second
            self.points.append(point)
        self.last = snap
        return point
