"""Live terminal view of a running scorer: decisions/s, latency percentiles, approvals, dead letters.

* statistics: :mod:`devtools.demo.live_stats` (pure, property-tested);
* rendering of a snapshot: a rich table redrawn on a terminal, one plain line per period otherwise
  (CI runs with no TTY and ``CI=true``);
* :func:`watch_topics`, an aiokafka consumer (no consumer group, nothing committed) of the decisions
  and dead-letter topics that folds every record into a :class:`~devtools.demo.live_stats.LiveStats`.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from devtools.demo.live_stats import (
    LiveSnapshot,
    LiveStats,
    fold_dead_letter,
    fold_decision,
)

__all__ = ["LiveDisplay", "LiveStats", "format_line", "is_interactive", "render_table", "watch_topics"]


# --- rendering --------------------------------------------------------------------------------------
def _ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def _progress(s: LiveSnapshot) -> str:
    if s.expected_total:
        return f"{s.handled:,}/{s.expected_total:,} ({100.0 * s.handled / s.expected_total:.0f} %)"
    return f"{s.handled:,}"


def format_line(s: LiveSnapshot) -> str:
    """One plain line per period, for logs and CI (no TTY)."""
    approval = "—" if math.isnan(s.approval_rate) else f"{100 * s.approval_rate:.1f}%"
    top = ", ".join(f"{name}={n}" for name, n in s.top_refusal_reasons[:3]) or "—"
    return (
        f"[{s.elapsed_s:6.1f}s] handled {_progress(s)} | {s.rate_per_s:,.0f} decisions/s | "
        f"p50 {_ms(s.p50_s)} p95 {_ms(s.p95_s)} p99 {_ms(s.p99_s)} | "
        f"worker p50 {_ms(s.worker_p50_s)} p99 {_ms(s.worker_p99_s)} | approval {approval} | "
        f"dead letters {s.dead_letters} | top refusal reasons: {top}"
    )


def render_table(s: LiveSnapshot, title: str = "credit-scorer — live") -> Any:
    """A rich renderable of a snapshot."""
    from rich.console import Group
    from rich.table import Table

    main = Table(title=title, show_header=False, expand=False, min_width=60)
    main.add_column("metric", style="bold cyan")
    main.add_column("value", justify="right")
    main.add_row("elapsed", f"{s.elapsed_s:.1f} s")
    main.add_row("handled / total", _progress(s))
    main.add_row("decisions/s (5 s window)", f"{s.rate_per_s:,.0f}")
    main.add_row("latency p50 / p95 / p99", f"{_ms(s.p50_s)} / {_ms(s.p95_s)} / {_ms(s.p99_s)}")
    main.add_row("worker's own p50 / p99", f"{_ms(s.worker_p50_s)} / {_ms(s.worker_p99_s)}")
    approval = "—" if math.isnan(s.approval_rate) else f"{100 * s.approval_rate:.1f} %"
    main.add_row("decisions (ACCORD / REFUS or REFER)", f"{s.decisions:,} ({s.approvals:,} / {s.refusals:,})")
    main.add_row("approval rate", approval)
    main.add_row("dead letters", f"{s.dead_letters:,}", style="red" if s.dead_letters else None)
    reasons = Table(title="top reasons not to approve", show_header=True, expand=False, min_width=60)
    reasons.add_column("principal reason (REFUS and REFER)")
    reasons.add_column("refusals", justify="right")
    for name, n in s.top_refusal_reasons:
        reasons.add_row(name, f"{n:,}")
    parts: list[Any] = [main, reasons]
    if s.dead_letter_kinds:
        dlq = Table(title="dead letters by kind", show_header=False, expand=False, min_width=60)
        dlq.add_column("kind")
        dlq.add_column("count", justify="right")
        for kind, n in s.dead_letter_kinds:
            dlq.add_row(kind, f"{n:,}")
        parts.append(dlq)
    return Group(*parts)


def is_interactive(stream: TextIO | None = None) -> bool:
    """A live (redrawn) view only on a real terminal and outside CI."""
    stream = stream if stream is not None else sys.stdout
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    return bool(stream.isatty()) and not ci


class LiveDisplay:
    """Refreshes a rich Live table on a TTY, prints a plain line every ``plain_every_s`` otherwise."""

    def __init__(
        self,
        stats: LiveStats,
        *,
        interactive: bool | None = None,
        plain_every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        out: TextIO | None = None,
    ) -> None:
        self.stats = stats
        self.interactive = is_interactive() if interactive is None else interactive
        self.plain_every_s = plain_every_s
        self.clock = clock
        self.out = out if out is not None else sys.stdout
        self._live: Any = None
        self._last_plain = -math.inf

    def __enter__(self) -> LiveDisplay:
        if self.interactive:
            from rich.live import Live

            self._live = Live(render_table(self.stats.snapshot(self.clock())), refresh_per_second=4)
            self._live.__enter__()
        return self

    def refresh(self, *, force: bool = False) -> None:
        now = self.clock()
        snap = self.stats.snapshot(now)
        if self._live is not None:
            self._live.update(render_table(snap))
        elif force or now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            print(format_line(snap), file=self.out, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(render_table(self.stats.snapshot(self.clock())))
            self._live.__exit__(None, None, None)
            self._live = None


# --- the consumer ------------------------------------------------------------------------------------
async def watch_topics(
    bootstrap_servers: str,
    decisions_topic: str,
    dead_letter_topic: str,
    stats: LiveStats,
    stop: asyncio.Event,
    *,
    on_batch: Callable[[], None] | None = None,
    from_beginning: bool = True,
    clock: Callable[[], float] = time.monotonic,
    ready: asyncio.Event | None = None,
) -> None:
    """Fold every record of the two topics into ``stats`` until ``stop`` is set.

    No consumer group and no commits: the view is a pure observer. ``from_beginning`` reads each topic
    from its earliest offset (the embedded demo's topics are fresh), which also avoids relying on the
    broker's LATEST offset.
    """
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        decisions_topic,
        dead_letter_topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        metadata_max_age_ms=1000,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        if ready is not None:
            ready.set()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            now = clock()
            for tp, records in batches.items():
                if tp.topic == decisions_topic:
                    for rec in records:
                        if rec.value is not None:
                            fold_decision(stats, now, rec.value)
                else:
                    for rec in records:
                        fold_dead_letter(stats, now, rec.value or b"")
            if on_batch is not None:
                on_batch()
    finally:
        await consumer.stop()
