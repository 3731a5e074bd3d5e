"""The soak benchmark's summary per engine and its printed table (:mod:`bench.bench_soak`)."""

from __future__ import annotations

import statistics
from typing import Any


def _series(rows: list[dict[str, Any]], key: str, phases: tuple[str, ...] = ("stream", "drain")) -> list[Any]:
    return [r[key] for r in rows if r.get("phase") in phases and r.get(key) is not None]


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers to read first, from one engine's full result."""
    if "error" in result:
        return {"error": result["error"]}
    rows, end = result["samples"], result["end"]
    total = result["audit"]["total"]
    committed = result["committed"]
    return {
        "drained": result["drained"],
        "drain_s": result["drain_s"],
        "producer_sent": result["sent"],  # warm-up + stream, as the producer CLI reported them
        "sent": total["applications"],  # distinct application ids on the applications topic
        "decided": total["decided"],
        "decision_records": total["decision_records"],
        "dead_letters": total["dead_letters"],
        "undecided": total["undecided"],
        "duplicates": total["duplicates"],
        "committed_at_log_end": all(c["committed"] == c["log_end"] for c in committed.values()),
        "recoveries": end.get("recoveries", {}),
        "final_fetch_wait_ms": end.get("fetch_wait_ms"),
        "max_fetch_wait_ms": max(_series(rows, "fetch_wait_ms"), default=None),
        "max_lag": max(_series(rows, "lag"), default=None),
        "max_stalled_s": max(_series(rows, "stalled_s"), default=None),
        "max_starved_s": max(_series(rows, "starved_s"), default=None),
        "worker_rss_mb": {
            "start": result["worker_rss_start_mb"],
            "end": end.get("worker_rss_mb"),
            "max": max(_series(rows, "worker_rss_mb"), default=None),
        },
        "tansu_rss_mb": {
            "end": result["tansu_rss_end_mb"],
            "after_audit": result["tansu_rss_after_audit_mb"],
        },
        "median_cpu_pct": {
            p: _median(_series(rows, f"{p}_cpu_pct", ("stream",))) for p in ("worker", "tansu", "producer")
        },
        "median_load1": _median(_series(rows, "load1", ("stream",))),
        "audit_read": {
            t: {k: r[k] for k in ("complete", "records", "seconds", "records_per_s", "empty_polls")}
            for t, r in result["audit"]["reads"].items()
        },
        # [minute, decisions, decided p50, p95, p99, published p50, p99, queued p50, p99]
        "latency_ms": [_latency_row(m) for m in result["latency_per_minute"]],
        "worker_exit": result["worker_exit"],
        "worker_log_notes": result["worker_log"]["lines"],
    }


def _latency_row(m: dict[str, Any]) -> list[Any]:
    decided, published = m["decided_ms"], m["published_ms"]
    quantiles = [decided["p50"], decided["p95"], decided["p99"], published["p50"], published["p99"]]
    quantiles += [m["queued_ms"]["p50"], m["queued_ms"]["p99"]]
    return [int(m["from_s"] // 60), m["decisions"], *quantiles]


def print_report(summary: dict[str, dict[str, Any]]) -> None:
    for engine, s in summary.items():
        print(f"\n--- {engine}")
        if "error" in s:
            print(f"  FAILED: {s['error']}")
            continue
        print(
            f"  sent {s['sent']:,} (producer said {s['producer_sent']:,}) · decided {s['decided']:,} "
            f"({s['decision_records']:,} records) · dead letters {s['dead_letters']:,} · undecided "
            f"{s['undecided']:,} · duplicates {s['duplicates']:,} · drained {s['drained']} in "
            f"{s['drain_s']} s · committed at log end {s['committed_at_log_end']}"
        )
        print(
            f"  recoveries {s['recoveries'] or '{}'} · long-poll final {s['final_fetch_wait_ms']} ms "
            f"(max {s['max_fetch_wait_ms']}) · max lag {s['max_lag']} · max stalled {s['max_stalled_s']} s"
        )
        rss, tansu, cpu = s["worker_rss_mb"], s["tansu_rss_mb"], s["median_cpu_pct"]
        print(
            f"  worker RSS {rss['start']} → {rss['end']} MB (max {rss['max']}) · Tansu RSS {tansu['end']} MB "
            f"(after the audit {tansu['after_audit']}) · median CPU % worker {cpu['worker']} Tansu "
            f"{cpu['tansu']} producer {cpu['producer']} · median load1 {s['median_load1']}"
        )
        reads = " · ".join(
            f"{t} {r['records']:,} in {r['seconds']} s{'' if r['complete'] else ' INCOMPLETE'}"
            for t, r in s["audit_read"].items()
        )
        print(f"  read back: {reads}")
        print("  minute  decisions   decided p50 / p95 / p99 ms   published p50 / p99 ms   queued p50 / p99")
        for m, n, d50, d95, d99, p50, p99, q50, q99 in s["latency_ms"]:
            print(
                f"  {m:>6} {n:>10,}   {d50:>8.1f} {d95:>8.1f} {d99:>8.1f}      {p50:>8.1f} {p99:>8.1f}"
                f"      {q50:>8.1f} {q99:>8.1f}"
            )
