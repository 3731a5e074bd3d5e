"""`credit-scorer replay …`: rescore a topic's history with another model and report what changed.

Exit codes: 0 done, 1 a dependency failed (broker, Redis, registry), 2 bad arguments or input files,
130 interrupted (Ctrl-C / SIGTERM: the batch in hand is finished and the checkpoint written; re-run the
same command with ``--resume``).
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from credit_scorer.cli_errors import cli_error
from replay.exceptions import CheckpointError, ReplayError, ReplayInputError

if TYPE_CHECKING:  # imported when a command runs: `credit-scorer --help` stays fast
    from replay.reader import ReadRange

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def parse_offsets(values: list[str] | None, option: str, partitions_hint: str = "") -> dict[int, int] | int:
    """``["P:OFFSET", …]`` → {partition: offset}; a single bare ``OFFSET`` applies to every partition."""
    if not values:
        return {}
    if len(values) == 1 and ":" not in values[0]:
        return _non_negative(values[0], option)
    out: dict[int, int] = {}
    for value in values:
        part, sep, offset = value.partition(":")
        if not sep:
            raise ReplayInputError(
                f"{option} {value!r}: use PARTITION:OFFSET for each partition, or one OFFSET"
            )
        out[_non_negative(part, option)] = _non_negative(offset, option)
    return out


def _non_negative(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ReplayInputError(f"{option} {text!r}: not an integer") from None
    if value < 0:
        raise ReplayInputError(f"{option} {text!r}: must be >= 0")
    return value


def parse_time(value: str | None, option: str) -> int | None:
    """ISO 8601 (naive = UTC) or epoch milliseconds → epoch milliseconds."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayInputError(f"{option} {value!r}: not an ISO 8601 time nor epoch milliseconds") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


async def _all_partitions(settings: Any) -> list[int]:
    from replay.reader import TopicReader

    reader = TopicReader(settings.kafka, settings.kafka.applications_topic)
    await reader.start()
    try:
        return await reader.partitions()
    finally:
        await reader.stop()


async def _run_with_signals(replayer: Any) -> Any:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, replayer.stop.set)
    try:
        return await replayer.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command("run")
def run_command(
    model: Path | None = typer.Option(None, "--model", help="Model directory to replay with."),
    model_version: str | None = typer.Option(
        None, "--model-version", help="MLflow registry version (or 'latest') to replay with."
    ),
    model_alias: str | None = typer.Option(
        None, "--model-alias", help="MLflow registry alias (e.g. challenger) to replay with."
    ),
    against: Path | None = typer.Option(
        None, "--against", help="Compare with this model directory instead of the live decisions."
    ),
    against_version: str | None = typer.Option(
        None, "--against-version", help="Compare with this registry version instead of the live decisions."
    ),
    against_alias: str | None = typer.Option(
        None, "--against-alias", help="Compare with the version this alias (e.g. champion) points at."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder (default: var/reports/replay-<model>[-vs-<other>])."
    ),
    from_offset: list[str] | None = typer.Option(
        None, "--from-offset", help="OFFSET, or PARTITION:OFFSET (repeat)."
    ),
    to_offset: list[str] | None = typer.Option(
        None, "--to-offset", help="Exclusive end: OFFSET, or PARTITION:OFFSET (repeat). Default: the log end."
    ),
    from_time: str | None = typer.Option(
        None, "--from-time", help="ISO 8601 or epoch ms (record timestamp >=)."
    ),
    to_time: str | None = typer.Option(None, "--to-time", help="ISO 8601 or epoch ms (record timestamp <)."),
    labels: Path | None = typer.Option(
        None, "--labels", help="Feature table (parquet) or CSV with SK_ID_CURR, TARGET for the business cost."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the replay checkpointed in --out."),
    publish: bool = typer.Option(
        True, "--publish/--no-publish", help="Write rescored decisions to the replay topic."
    ),
    batch_size: int = typer.Option(5_000, "--batch-size", min=1, help="Records per rescoring batch."),
    reasons: str = typer.Option(
        "none", "--reasons", help="Top reasons on replayed decisions: none|refusals|all."
    ),
    checkpoint_every: float = typer.Option(
        5.0, "--checkpoint-every", min=0.0, help="Seconds between checkpoints (0 = after every batch)."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        help="Processes, each rescoring some partitions (0 = two per core, at most one per partition).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG plots."),
) -> None:
    """Rescore the applications topic (or a range) and write the comparison report: against the live
    decisions, or (--against-version / --against-alias / --against) against another model deciding the
    same applications on the same vectors."""
    from credit_scorer.settings import get_settings
    from replay.compare import CostMatrix
    from replay.models import ModelChoice, load_pair
    from replay.report import REPORT_FILE, build_report
    from replay.runner import ReplayOptions
    from scoring.exceptions import PolicyError
    from scoring.policy_file import prepare_with_policy

    failures = _dependency_errors()
    settings = get_settings()
    try:
        _check_inputs(reasons, labels)
        new, other = load_pair(
            settings,
            ModelChoice("model", model, model_version, model_alias),
            ModelChoice("against", against, against_version, against_alias),
        )
        loaded = new.loaded
        read_range = _read_range(settings, from_offset, to_offset, from_time, to_time)
        name = f"{loaded.model_version}-vs-{other.loaded.model_version}" if other else loaded.model_version
        out_dir = out or settings.paths.reports_dir / f"replay-{name}"
        options = ReplayOptions(
            out_dir=out_dir,
            read_range=read_range,
            batch_size=batch_size,
            reasons=reasons,  # type: ignore[arg-type]  # checked by _check_inputs
            resume=resume,
            publish=publish,
            checkpoint_every_s=checkpoint_every,
            workers=workers,
            registry_versions=(new.registry_version, other.registry_version if other else None),
        )
        # once, before any worker process is forked; a bad policy file stops here (exit 2)
        policy = settings.policy
        prepared = prepare_with_policy(loaded, policy.path, policy.reason_codes)
        prepared_other = (
            prepare_with_policy(other.loaded, policy.path, policy.reason_codes) if other else None
        )
        replayer = _replayer(settings, (prepared, prepared_other), options, progress)
        result = asyncio.run(_run_with_signals(replayer))
        _exit_if_interrupted(result, out_dir)
        comparison = build_report(
            out_dir,
            labels,
            CostMatrix(**loaded.card.cost_matrix),
            plots=plots,
            min_group_decisions=settings.fairness.min_group_decisions,
        )
    except (ReplayInputError, CheckpointError, PolicyError) as exc:
        raise cli_error(str(exc), 2) from None
    except failures as exc:
        raise cli_error(str(exc) or type(exc).__name__, 1) from None
    _echo_summary(comparison, result, new.describe(), out_dir / REPORT_FILE)


def _dependency_errors() -> tuple[type[Exception], ...]:
    """The failures of a dependency (broker, Redis, feature files, model, registry, disk): exit code 1."""
    from aiokafka.errors import KafkaError

    from feature_cache.exceptions import FeatureCacheError
    from feature_loader.exceptions import FeatureLoaderError
    from scoring.exceptions import ScoringError
    from training.exceptions import TrainingError

    return (
        ReplayError,
        ScoringError,
        FeatureCacheError,
        FeatureLoaderError,
        TrainingError,
        KafkaError,
        OSError,
    )


def _check_inputs(reasons: str, labels: Path | None) -> None:
    if reasons not in ("none", "refusals", "all"):
        raise ReplayInputError(f"--reasons {reasons!r}: use none, refusals or all")
    if labels is not None and not labels.is_file():
        raise ReplayInputError(f"--labels {labels}: file not found")


def _read_range(
    settings: Any,
    from_offset: list[str] | None,
    to_offset: list[str] | None,
    from_time: str | None,
    to_time: str | None,
) -> ReadRange:
    """The range to replay; a bare OFFSET applies to every partition (the broker is asked which)."""
    from replay.reader import ReadRange

    froms = parse_offsets(from_offset, "--from-offset")
    tos = parse_offsets(to_offset, "--to-offset")
    if isinstance(froms, int) or isinstance(tos, int):
        parts = asyncio.run(_all_partitions(settings))
        froms = dict.fromkeys(parts, froms) if isinstance(froms, int) else froms
        tos = dict.fromkeys(parts, tos) if isinstance(tos, int) else tos
    return ReadRange(froms, tos, parse_time(from_time, "--from-time"), parse_time(to_time, "--to-time"))


def _exit_if_interrupted(result: Any, out_dir: Path) -> None:
    if result.status == "interrupted":
        typer.echo(
            f"interrupted: {result.consumed} of {result.total or '?'} records done, "
            f"checkpoint in {out_dir}; re-run with --resume",
            err=True,
        )
        raise typer.Exit(130)


def _echo_summary(comparison: Any, result: Any, model: str, report: Path) -> None:
    o = comparison.overall
    old, new = comparison.sides
    typer.echo(
        f"replayed {comparison.rescored} applications with {model}: {comparison.joined} joined "
        f"({old} → {new}), ACCORD→REFUS {o.accord_to_refus}, REFUS→ACCORD {o.refus_to_accord}, "
        f"cost {o.cost_before:g} → {o.cost_after:g}; report: {report} "
        f"({result.seconds:.1f}s, {result.rescored / max(result.seconds, 1e-9):,.0f} applications/s)"
    )


def _replayer(settings: Any, models: tuple[Any, Any], options: Any, progress: bool) -> Any:
    """The replay of ``models`` (the replay model, and the one compared with or None)."""
    from replay.parallel import ParallelReplayer

    model, against = models
    if not progress:
        return ParallelReplayer(settings, model, options, against=against)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
    )
    task = bar.add_task("replay", total=None)

    def update(done: int, total: int | None) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    class _WithBar(ParallelReplayer):
        async def run(self) -> Any:
            try:
                return await super().run()
            finally:
                bar.stop()

    return _WithBar(settings, model, options, progress=update, against=against)


@app.command("report")
def report_command(
    out: Path = typer.Option(..., "--out", help="Folder of a complete replay."),
    labels: Path | None = typer.Option(
        None, "--labels", help="Feature table (parquet) or CSV with SK_ID_CURR, TARGET."
    ),
    fn_cost: float = typer.Option(10.0, "--fn-cost", help="Cost of an ACCORD to a client who defaults."),
    fp_cost: float = typer.Option(1.0, "--fp-cost", help="Cost of a REFUS to a client who repays."),
    plots: bool = typer.Option(True, "--plots/--no-plots"),
) -> None:
    """Rebuild the report of a replay folder (e.g. with labels or another cost matrix)."""
    from replay.compare import CostMatrix
    from replay.report import REPORT_FILE, build_report

    if not (out / "checkpoint.json").is_file():
        raise cli_error(f"{out}: no replay checkpoint (checkpoint.json) in this folder", 2)
    try:
        from credit_scorer.settings import get_settings

        k = get_settings().fairness.min_group_decisions
        build_report(out, labels, CostMatrix(fn_cost, fp_cost), plots=plots, min_group_decisions=k)
    except ReplayInputError as exc:
        raise cli_error(str(exc), 2) from None
    except (ReplayError, OSError) as exc:
        raise cli_error(str(exc), 1) from None
    typer.echo(f"report: {out / REPORT_FILE}")
