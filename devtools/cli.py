"""`credit-scorer stream produce` and `credit-scorer stream demo`, registered onto stream_app.cli.app
(imported by credit_scorer.cli).

Exit codes: 0 success; 1 a runtime failure (broker unreachable, undelivered events, missing decisions);
2 bad input (file, row, field or option), always with one line naming it; 130 the demo was interrupted
(Ctrl-C / SIGTERM) and cleaned up.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from credit_scorer.cli_errors import cli_error
from devtools.exceptions import DevtoolsError, ProducerError, ProducerInputError
from stream_app.cli import app

if TYPE_CHECKING:  # imported lazily at run time, as every command does: `credit-scorer --help` stays fast
    from devtools.application_sources import ApplicationRow
    from devtools.producer import ProduceSummary, ProgressCallback


def _check_positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise cli_error(
            code=2, message=f"option --{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}"
        )


@app.command("produce")
def produce_command(
    csv: Path | None = typer.Argument(
        None, help="Application CSV or CSV.GZ (e.g. application_test.csv.gz); omit with --synthetic."
    ),
    synthetic: int = typer.Option(0, "--synthetic", help="Stream N synthetic applications instead."),
    rate: float = typer.Option(2000.0, "--rate", help="Events per second (0 = as fast as possible)."),
    limit: int | None = typer.Option(None, "--limit", help="Stop after this many events."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds."),
    repeat: bool = typer.Option(False, "--repeat/--no-repeat", help="Cycle through the rows again."),
    bad_every: int = typer.Option(0, "--bad-every", help="Make every Nth event malformed (0 = never)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic applications."),
    bootstrap_servers: str | None = typer.Option(None, "--bootstrap-servers", help="Default: settings."),
    topic: str | None = typer.Option(None, "--topic", help="Default: settings.kafka.applications_topic."),
) -> None:
    """Stream a CSV or synthetic loan applications as LoanApplication events at a steady rate."""
    from credit_scorer.settings import get_settings
    from devtools.demo.live_view import is_interactive

    _check_positive("rate", rate, allow_zero=True)
    _check_positive("limit", limit)
    _check_positive("duration", duration)
    _check_positive("bad-every", bad_every, allow_zero=True)
    if (csv is None) == (synthetic <= 0):
        raise cli_error("give either a CSV file or --synthetic N (N > 0)")
    settings = get_settings()
    servers = bootstrap_servers or settings.kafka.bootstrap_servers
    target = topic or settings.kafka.applications_topic
    rows = _read_rows(csv, synthetic, seed, limit=None if repeat else limit)
    source = str(csv) if csv is not None else f"{synthetic:,} synthetic applications (seed {seed})"
    typer.echo(f"producing {source} → {target} on {servers} at {rate:,.0f}/s", err=True)
    interactive = is_interactive(sys.stderr)
    expected = limit if limit is not None else (None if repeat else len(rows))
    try:
        summary = asyncio.run(
            _produce_until_signal(
                servers,
                target,
                rows,
                rate=rate,
                limit=limit,
                duration_s=duration,
                repeat=repeat,
                bad_every=bad_every,
                on_progress=_progress_printer(expected, interactive),
            )
        )
    except ProducerInputError as exc:
        raise cli_error(str(exc)) from None
    except ProducerError as exc:
        raise cli_error(str(exc), code=1) from None
    if interactive:
        sys.stderr.write("\n")
    _report_produced(summary, target, rate)


def _read_rows(csv: Path | None, synthetic: int, seed: int, limit: int | None) -> list[ApplicationRow]:
    """The CSV's rows (``limit`` first ones), or ``synthetic`` generated ones; bad input exits 2."""
    from devtools.producer import read_csv_applications, synthetic_applications

    try:
        if csv is not None:
            return read_csv_applications(csv, limit=limit)
        return synthetic_applications(synthetic, seed)
    except ProducerInputError as exc:
        raise cli_error(str(exc)) from None


def _progress_printer(expected: int | None, interactive: bool) -> ProgressCallback:
    """One progress line on stderr: rewritten in place on a terminal, one line per update otherwise."""

    def progress(s: ProduceSummary) -> None:
        total = f"/{expected:,}" if expected else ""
        line = f"sent {s.sent:,}{total} in {s.seconds:.1f}s ({s.sent / max(s.seconds, 1e-9):,.0f}/s)"
        if interactive:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
        else:
            typer.echo(line, err=True)

    return progress


async def _produce_until_signal(
    servers: str,
    topic: str,
    rows: list[ApplicationRow],
    *,
    rate: float,
    limit: int | None,
    duration_s: float | None,
    repeat: bool,
    bad_every: int,
    on_progress: ProgressCallback,
) -> ProduceSummary:
    """:func:`devtools.producer.produce`, told to stop (and flush what it sent) on Ctrl-C or SIGTERM."""
    from devtools.producer import produce

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await produce(
        servers,
        topic,
        rows,
        rate=rate,
        limit=limit,
        duration_s=duration_s,
        repeat=repeat,
        bad_every=bad_every,
        stop=stop,
        on_progress=on_progress,
    )


def _report_produced(summary: ProduceSummary, target: str, rate: float) -> None:
    typer.echo(
        f"sent {summary.sent:,} events ({summary.malformed:,} deliberately malformed) to {target} in "
        f"{summary.seconds:.2f}s: {summary.achieved_rate:,.0f}/s (target {rate:,.0f}/s); "
        f"failed deliveries: {summary.failed:,}"
    )
    if summary.failed:
        raise cli_error(
            code=1,
            message=f"{summary.failed:,} events were not delivered (first error: {summary.first_error})",
        )


@app.command("demo")
def demo_command(
    rate: float = typer.Option(2000.0, "--rate", help="Applications per second (0 = as fast as possible)."),
    limit: int | None = typer.Option(None, "--limit", help="Stop after this many applications."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds."),
    bad_every: int = typer.Option(
        1000, "--bad-every", help="Every Nth event is malformed, to show the dead-letter path (0 = never)."
    ),
    raw: Path | None = typer.Option(None, "--raw", help="Raw Home Credit folder (default: settings)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Artifacts folder (default: var/)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild features and retrain the model."),
    summary_json: Path | None = typer.Option(None, "--summary-json", help="Also write the summary here."),
    view: bool = typer.Option(
        False, "--view", help="Also the store sink, the API and the officer view (served until Ctrl-C)."
    ),
) -> None:
    """The embedded default: Tansu + redis-server + worker, the sample streamed live (Ctrl-C stops)."""
    from devtools.demo.run import DemoOptions, run_demo

    _check_positive("rate", rate, allow_zero=True)
    _check_positive("limit", limit)
    _check_positive("duration", duration)
    _check_positive("bad-every", bad_every, allow_zero=True)
    options = DemoOptions(
        rate=rate,
        limit=limit,
        duration_s=duration,
        bad_every=bad_every,
        raw_dir=raw,
        data_dir=data_dir,
        rebuild=rebuild,
        summary_json=summary_json,
        view=view,
    )
    try:
        report = run_demo(options)
    except ProducerInputError as exc:
        raise cli_error(str(exc)) from None
    except DevtoolsError as exc:  # DemoError, or the producer losing the broker
        raise cli_error(str(exc), code=1) from None
    if report.interrupted:
        raise typer.Exit(130)
    if not report.complete:
        raise cli_error(
            code=1, message="some applications got no decision or dead letter (see the summary above)"
        )
