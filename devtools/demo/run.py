"""The embedded one-command run (`credit-scorer stream demo`): everything local, no Docker.

Steps, each printed with its timing:

1. features — the feature build on the real sample, unless ``<data_dir>/features`` already has it;
2. model — training, unless a model for that feature-schema version exists under ``<data_dir>/models``;
3. broker — Tansu (memory storage) on a free port, topics created;
4. redis — a ``redis-server`` on a free port; cache — the client features loaded into it;
5. worker — ``credit-scorer stream worker`` as a subprocess, its environment pointing at both;
   one warm-up application must come back as a decision before the clock starts;
6. stream — application_test rows as LoanApplication events at a steady rate while the live view
   (devtools/demo/live_view.py) follows the decisions and dead-letter topics;
7. summary — once every sent event has its decision or dead letter (or on Ctrl-C), all children are
   stopped (SIGTERM, then SIGKILL after a deadline) and the final figures are printed.

Whatever happens (error, Ctrl-C, end of stream), every child process is stopped before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from devtools.demo.live_view import LiveDisplay, LiveStats, is_interactive, watch_topics
from devtools.demo.prepare import (
    DemoChild,
    create_topics,
    ensure_features,
    ensure_model,
    load_cache,
    start_redis,
    start_worker,
)
from devtools.demo.services import serve_until_interrupted, start_view_services, wait_for_view
from devtools.exceptions import DemoError

WARMUP_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 60.0
DRAIN_AFTER_INTERRUPT_S = 5.0


@dataclass
class DemoOptions:
    rate: float = 2000.0
    limit: int | None = None
    duration_s: float | None = None
    bad_every: int = 1000
    raw_dir: Path | None = None
    data_dir: Path | None = None
    rebuild: bool = False
    summary_json: Path | None = None
    view: bool = False  # also the store sink, the API and the officer view; serve them until Ctrl-C


@dataclass
class DemoReport:
    steps: dict[str, float] = field(default_factory=dict)
    children: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0
    malformed: int = 0
    failed: int = 0
    produce_seconds: float = 0.0
    decisions: int = 0
    approvals: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    p50_ms: float = math.nan
    p95_ms: float = math.nan
    p99_ms: float = math.nan
    interrupted: bool = False
    complete: bool = False
    error: str | None = None


class StepPrinter:
    """Numbered steps with timings on a rich console (plain text when not a terminal)."""

    def __init__(self, console: Console, report: DemoReport) -> None:
        self.console = console
        self.report = report

    @contextlib.contextmanager
    def step(self, name: str, doing: str) -> Iterator[dict[str, str]]:
        self.console.print(f"[bold cyan]▶ {name}[/]: {doing}…")
        info: dict[str, str] = {}
        t0 = time.perf_counter()
        try:
            yield info
        except BaseException:
            self.console.print(f"[bold red]✗ {name}[/] failed after {time.perf_counter() - t0:.1f}s")
            raise
        seconds = time.perf_counter() - t0
        self.report.steps[name] = round(seconds, 3)
        detail = info.get("detail", "done")
        self.console.print(f"[bold green]✓ {name}[/] {detail} [dim]({seconds:.1f}s)[/]")


def _settings_paths(options: DemoOptions) -> tuple[Path, Path, Any]:
    from credit_scorer.settings import get_settings

    settings = get_settings()
    data_dir = (options.data_dir or settings.paths.data_dir).resolve()
    raw_dir = (options.raw_dir or settings.paths.raw_dir).resolve()
    return data_dir, raw_dir, settings


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoReport:
    """Run the whole demo; ``report.complete`` when every sent application got an outcome."""
    console = console or Console(highlight=False, soft_wrap=True)
    report = DemoReport()
    steps = StepPrinter(console, report)
    children: list[DemoChild] = []
    data_dir, raw_dir, settings = _settings_paths(options)
    run_dir = data_dir / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)

    def interrupt(signum: int, frame: Any) -> None:  # preparation phase: stop at once, then clean up
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with steps.step("features", f"client features from {raw_dir}") as info:
            features_dir = ensure_features(raw_dir, data_dir / "features", rebuild=options.rebuild, info=info)
        with steps.step("model", "LightGBM model for these features") as info:
            model_dir = ensure_model(features_dir, data_dir / "models", rebuild=options.rebuild, info=info)
        with steps.step("broker", "Tansu (Kafka API, memory storage) on a free port") as info:
            broker = DemoChild.tansu(run_dir / "tansu.log")
            children.append(broker)
            create_topics(broker.address, settings.kafka)
            info["detail"] = f"listening on {broker.address} (pid {broker.pid}), topics created"
        with steps.step("redis", "redis-server on a free port") as info:
            redis = start_redis(run_dir)
            children.append(redis)
            info["detail"] = f"listening on {redis.address} (pid {redis.pid})"
        with steps.step("cache", "client features into Redis") as info:
            load_cache(features_dir, redis.address, settings, info=info)
        with steps.step("worker", "`credit-scorer stream worker` subprocess") as info:
            worker = start_worker(
                broker.address, redis.address, model_dir, data_dir, run_dir / "worker.log", settings
            )
            children.append(worker)
            info["detail"] = f"started (pid {worker.pid}), log {worker.log_path}"
        view_url = (
            start_view_services(steps, children, broker.address, redis.address, model_dir, run_dir)
            if options.view
            else None
        )
        if view_url is not None:
            with steps.step("view", "the officer view answers") as info:
                wait_for_view(next(c for c in children if c.name == "view"), view_url)
                info["detail"] = f"open {view_url} (monitoring: {view_url}/monitoring)"
        source = raw_dir / "application_test.csv.gz"
        asyncio.run(_stream(options, settings, broker.address, worker, source, console, steps, report))
        if view_url is not None and not report.interrupted:
            serve_until_interrupted(console, view_url)
    except KeyboardInterrupt:
        report.interrupted = True
        console.print("[yellow]interrupted: stopping every child process…[/]")
    except DemoError as exc:
        report.error = str(exc)
        raise
    finally:
        for sig in previous:  # the shutdown itself must not be interrupted
            signal.signal(sig, signal.SIG_IGN)
        try:
            _stop_children(children, console, report)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        _print_summary(console, report)
        if options.summary_json is not None:
            options.summary_json.parent.mkdir(parents=True, exist_ok=True)
            options.summary_json.write_text(json.dumps(report.__dict__, indent=2, default=str))
    return report


@dataclass
class _Live:
    """What the stream phase shares: the worker, the live statistics and their view, the interrupts."""

    worker: DemoChild
    stats: LiveStats
    view: asyncio.Task[None]
    stop: asyncio.Event  # first Ctrl-C / SIGTERM, or the worker exited: stop sending, drain briefly
    abort: asyncio.Event  # a second Ctrl-C / SIGTERM: stop waiting for the last outcomes too


async def _stream(
    options: DemoOptions,
    settings: Any,
    bootstrap: str,
    worker: DemoChild,
    source: Path,
    console: Console,
    steps: StepPrinter,
    report: DemoReport,
) -> None:
    from devtools.producer import start_producer

    kafka = settings.kafka
    stop = asyncio.Event()
    abort = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            abort.set()
        stop.set()
        report.interrupted = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    # Reading and validating the rows overlaps the worker's start-up (both take seconds).
    rows_future = loop.run_in_executor(None, _read_rows, source, options.limit)
    stats = LiveStats(started_at=time.monotonic(), expected_total=options.limit)
    view_stop = asyncio.Event()
    view_ready = asyncio.Event()
    view = asyncio.create_task(
        watch_topics(
            bootstrap, kafka.decisions_topic, kafka.dead_letter_topic, stats, view_stop, ready=view_ready
        )
    )
    live = _Live(worker, stats, view, stop, abort)
    producer = await start_producer(bootstrap)
    try:
        await _wait(view_ready, view, 30.0, "the live view could not subscribe to the decisions topic")
        with steps.step("warm-up", "one application end to end (worker joins its group)") as info:
            await _warm_up(producer, kafka.applications_topic, source, live)
            info["detail"] = f"first decision after {time.monotonic() - stats.started_at:.1f}s"
        with steps.step("rows", f"{source.name} rows → LoanApplication events") as info:
            rows, seconds = await rows_future
            info["detail"] = f"{len(rows):,} applications validated in {seconds:.1f}s (during the warm-up)"
        if options.limit is None and options.duration_s is None:
            stats.expected_total = len(rows)
        await _stream_rows(options, producer, kafka.applications_topic, rows, live, console, report)
        _record_outcome(stats, report)
        if not report.complete:
            worker.raise_if_exited("the worker exited during the stream")
    finally:
        rows_future.cancel()  # no-op once done; an unfinished read is abandoned
        view_stop.set()
        await producer.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(view, 5.0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _read_rows(source: Path, limit: int | None) -> tuple[list[Any], float]:
    """The source's rows, validated, and the seconds that took."""
    from devtools.producer import read_csv_applications

    started = time.perf_counter()
    return read_csv_applications(source, limit), time.perf_counter() - started


async def _warm_up(producer: Any, topic: str, source: Path, live: _Live) -> None:
    """One application through the worker, so that the clock starts with the worker in its group."""
    from devtools.producer import EventFactory, read_csv_applications

    factory = EventFactory(run_id="warmup")
    key, value = factory.make(read_csv_applications(source, limit=1)[0])
    await (await producer.send(topic, value=value, key=key))
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while live.stats.decisions < 1:
        live.worker.raise_if_exited("the worker exited during the warm-up")
        if live.stop.is_set():
            raise KeyboardInterrupt
        if time.monotonic() > deadline:
            raise DemoError(f"no decision within {WARMUP_TIMEOUT_S:.0f}s; see {live.worker.log_path}")
        await asyncio.sleep(0.05)


async def _stream_rows(
    options: DemoOptions,
    producer: Any,
    topic: str,
    rows: list[Any],
    live: _Live,
    console: Console,
    report: DemoReport,
) -> None:
    """Send the rows at the chosen rate under the live view, then wait for their outcomes."""
    from devtools.producer import EventFactory, cycle_rows, send_at_rate

    stats = live.stats
    stats.reset(time.monotonic())
    rate_text = "unthrottled" if options.rate == 0 else f"{options.rate:,.0f}/s"
    bad = f", 1 malformed every {options.bad_every:,}" if options.bad_every else ""
    console.print(f"[bold cyan]▶ stream[/]: application_test at {rate_text}{bad} — Ctrl-C stops")
    factory = EventFactory(bad_every=options.bad_every)
    repeat = options.limit is not None or options.duration_s is not None  # else one pass over the file
    events = (factory.make(r) for r in cycle_rows(rows, repeat=repeat))
    with LiveDisplay(stats, interactive=is_interactive()) as display:
        ticker = asyncio.create_task(_tick(display, live.worker, live.stop))
        try:
            summary = await send_at_rate(
                producer,
                topic,
                events,
                rate=options.rate,
                limit=options.limit,
                duration_s=options.duration_s,
                stop=live.stop,
            )
            report.sent, report.failed = summary.sent, summary.failed
            report.malformed, report.produce_seconds = factory.malformed, summary.seconds
            stats.expected_total = expected = summary.sent - summary.failed
            await _drain(live, expected)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            display.refresh(force=True)


async def _drain(live: _Live, expected: int) -> None:
    """Wait for an outcome of each of the ``expected`` events, within a deadline (shorter once
    interrupted); a second interrupt, the worker's exit or the view's end cut it short."""
    drain = DRAIN_AFTER_INTERRUPT_S if live.stop.is_set() else DRAIN_TIMEOUT_S
    deadline = time.monotonic() + drain
    while live.stats.snapshot(time.monotonic()).handled < expected:
        if live.abort.is_set() or time.monotonic() > deadline or live.worker.exited() or live.view.done():
            break
        await asyncio.sleep(0.05)


def _record_outcome(stats: LiveStats, report: DemoReport) -> None:
    snap = stats.snapshot(time.monotonic())
    report.decisions, report.approvals, report.dead_letters = (
        snap.decisions,
        snap.approvals,
        snap.dead_letters,
    )
    report.duplicates = stats.duplicates
    report.p50_ms, report.p95_ms, report.p99_ms = (x * 1000 for x in (snap.p50_s, snap.p95_s, snap.p99_s))
    report.complete = snap.handled >= report.sent - report.failed and report.failed == 0


async def _wait(event: asyncio.Event, task: asyncio.Task[Any], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not event.is_set():
        if task.done():
            exc = task.exception()
            raise DemoError(f"{message}: {exc}")
        if time.monotonic() > deadline:
            raise DemoError(message)
        await asyncio.sleep(0.05)


async def _tick(display: LiveDisplay, worker: DemoChild, stop: asyncio.Event) -> None:
    while True:
        display.refresh()
        if worker.exited():
            stop.set()
        await asyncio.sleep(0.25)


def _stop_children(children: list[DemoChild], console: Console, report: DemoReport) -> None:
    for child in reversed(children):  # worker first, then redis, then the broker
        child.stop()
        report.children.append(child.describe())
        console.print(f"[dim]stopped {child.name} (pid {child.pid}, {child.address})[/]")


def _print_summary(console: Console, report: DemoReport) -> None:
    from rich.table import Table

    table = Table(title="demo summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for name, seconds in report.steps.items():
        table.add_row(f"step {name}", f"{seconds:.1f} s")
    if report.sent:
        rate = report.sent / report.produce_seconds if report.produce_seconds else math.nan
        table.add_row("applications sent", f"{report.sent:,} ({rate:,.0f}/s)")
        table.add_row("  of which malformed", f"{report.malformed:,}")
        table.add_row("decisions", f"{report.decisions:,}")
        if report.decisions:
            table.add_row("approval rate", f"{100 * report.approvals / report.decisions:.1f} %")
        table.add_row("dead letters", f"{report.dead_letters:,}")
        table.add_row("duplicates (redelivered)", f"{report.duplicates:,}")
        window = LiveStats.latency_window
        label = "event→decision p50 / p95 / p99" + (
            f" (last {window:,})" if report.decisions > window else ""
        )
        table.add_row(label, f"{report.p50_ms:.1f} / {report.p95_ms:.1f} / {report.p99_ms:.1f} ms")
        missing = report.sent - report.failed - report.decisions - report.dead_letters
        table.add_row("without outcome", f"{max(missing, 0):,}", style="red" if missing > 0 else None)
    table.add_row("children stopped", ", ".join(f"{c['name']}:{c['pid']}" for c in report.children) or "—")
    console.print(table)
    status = "INTERRUPTED" if report.interrupted else "complete" if report.complete else "INCOMPLETE"
    console.print(f"demo {status}")
    sys.stdout.flush()
