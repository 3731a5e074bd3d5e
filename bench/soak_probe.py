"""Probes of the soak benchmark (:mod:`bench.bench_soak`): the worker's /metrics page and the RSS and
CPU of its processes, read from /proc, one row every sampling interval."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.harness import sample_total

CLK_TCK = os.sysconf("SC_CLK_TCK")
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def rss_mb(pid: int | None) -> float | None:
    """Resident set size of a live process in MB (VmRSS), None when it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a live process (all its threads), None when it is gone."""
    if pid is None:
        return None
    try:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def labelled(page: str, name: str, label: str) -> dict[str, float]:
    """Samples named ``name`` on a Prometheus text page, by the value of one of their labels."""
    out: dict[str, float] = {}
    for line in page.splitlines():
        m = _SAMPLE.match(line)
        if m is None or m["name"] != name:
            continue
        found = re.search(rf'{label}="([^"]*)"', m["labels"] or "")
        key = found.group(1) if found else ""
        out[key] = out.get(key, 0.0) + float(m["value"])
    return out


def worker_metrics(page: str) -> dict[str, Any]:
    """The worker's counters and gauges the soak follows (empty when the page was not reachable)."""
    if not page:
        return {}
    return {
        "decisions": int(sample_total(page, "credit_scorer_decisions_total")),
        "dead_letters": int(sample_total(page, "credit_scorer_dead_letters_total")),
        "lag": int(sample_total(page, "credit_scorer_consumer_lag")),  # summed over partitions
        "fetch_wait_ms": round(sample_total(page, "credit_scorer_fetch_wait_seconds") * 1000, 1),
        "starved_s": round(sample_total(page, "credit_scorer_fetch_starved_seconds"), 2),
        "stalled_s": round(sample_total(page, "credit_scorer_stalled_seconds"), 2),
        "recoveries": {
            k: int(v) for k, v in labelled(page, "credit_scorer_fetch_recoveries_total", "action").items()
        },
    }


class Sampler:
    """One row per call: the worker's metrics, and RSS and CPU share (since the previous row) of the
    worker, Tansu and the producer; ``t_s`` counts from the sampler's creation."""

    def __init__(self, metrics_page: Callable[[], str], pids: dict[str, int | None]) -> None:
        self.metrics_page = metrics_page
        self.pids = dict(pids)
        self.t0 = time.monotonic()
        self.rows: list[dict[str, Any]] = []
        self._last: dict[str, tuple[float, float]] = {}  # process → (monotonic, cpu seconds)
        self._last_decisions: tuple[float, int] | None = None

    def sample(self, phase: str) -> dict[str, Any]:
        now = time.monotonic()
        row: dict[str, Any] = {"t_s": round(now - self.t0, 1), "phase": phase, "load1": os.getloadavg()[0]}
        row.update(worker_metrics(self.metrics_page()))
        if "decisions" in row:
            if self._last_decisions is not None:
                t, n = self._last_decisions
                row["decisions_per_s"] = round((row["decisions"] - n) / max(now - t, 1e-3), 1)
            self._last_decisions = (now, row["decisions"])
        for name, pid in self.pids.items():
            row[f"{name}_rss_mb"] = rss_mb(pid)
            cpu = cpu_s(pid)
            if cpu is None:
                continue
            t, c = self._last.get(name, (0.0, 0.0))
            if now - t < 1.0:
                continue  # a share over a shorter interval is mostly clock-tick noise
            if name in self._last:
                row[f"{name}_cpu_pct"] = round(100 * (cpu - c) / (now - t), 1)
            self._last[name] = (now, cpu)
        self.rows.append(row)
        return row

    def watch(
        self, phase: str, done: Callable[[dict[str, Any]], bool], timeout_s: float, every_s: float
    ) -> bool:
        """Sample every ``every_s`` until ``done(row)`` or the deadline; True when done."""
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.sample(phase)
            print(_line(row), flush=True)
            if done(row):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(every_s, max(0.0, deadline - time.monotonic())))  # the sampling period


def _line(row: dict[str, Any]) -> str:
    rec = " ".join(f"{k.split('_')[0]}={v}" for k, v in sorted(row.get("recoveries", {}).items())) or "-"
    get = row.get
    return (
        f"  [{row['phase']:6s} {row['t_s']:7.1f}s] decided {get('decisions', '?'):>9} "
        f"({get('decisions_per_s', 0):>7}/s) dlq {get('dead_letters', '?')} lag {get('lag', '?'):>7} "
        f"wait {get('fetch_wait_ms', '?')}ms starved {get('starved_s', '?')}s "
        f"stalled {get('stalled_s', '?')}s rec {rec} | worker {get('worker_rss_mb')} MB "
        f"{get('worker_cpu_pct', '-')}% tansu {get('tansu_rss_mb')} MB {get('tansu_cpu_pct', '-')}% "
        f"load {get('load1', 0):.2f}"
    )
