"""`credit-scorer features …`: build the client features from the raw tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from feature_loader.feature_schema import FeatureSchema

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _features() -> None:
    """Build client features from the raw Home Credit tables."""


@app.command("build")
def build_command(
    raw: Path | None = typer.Option(
        None, "--raw", help="Folder of the raw CSV(.gz) files (default: settings.paths.raw_dir)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder (default: settings.paths.features_dir)."
    ),
    schema: Path | None = typer.Option(
        None, "--schema", help="Pin the build to this feature_schema.json (e.g. the live model's)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="Pin the build to the feature schema of this model directory."
    ),
) -> None:
    """Write features.parquet, feature_schema.json and build_info.json to OUT.

    The schema comes from the code (fixed vocabularies), so any subset of clients gives the same
    version; --schema / --model pin it to a given schema (the live model's) instead."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from credit_scorer.settings import get_settings
    from feature_loader.build import build_features
    from feature_loader.exceptions import FeatureLoaderError
    from feature_loader.feature_schema import FeatureSource

    settings = get_settings()
    pinned = _pinned_schema(schema, model)
    raw_dir = raw or settings.paths.raw_dir
    out_dir = out or settings.paths.features_dir
    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("reading application tables", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"{stage} done", completed=done, total=total)

        try:
            result = build_features(raw_dir, out_dir, progress=progress, pinned=pinned)
        except FeatureLoaderError as exc:  # bad input: names the file / column / row
            bar.stop()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:  # e.g. the output folder is not writable
            bar.stop()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    for message in result.warnings:
        typer.echo(f"warning: {message}", err=True)
    by_source = {s.value: len(result.schema.by_source(s)) for s in FeatureSource}
    typer.echo(
        f"{result.rows} clients ({result.train_rows} train, {result.test_rows} test) × "
        f"{len(result.schema)} features {by_source}, schema {result.schema.version}"
        f"{' (pinned)' if result.pinned else ''}, "
        f"{result.seconds['total']:.1f} s → {out_dir}"
    )


def _pinned_schema(schema: Path | None, model: Path | None) -> FeatureSchema | None:
    """The schema to pin the build to (None = this code's); exit 2 naming the file when unusable."""
    from feature_loader.build import SCHEMA_FILE
    from feature_loader.feature_schema import FeatureSchema

    if schema is not None and model is not None:
        typer.echo("error: give --schema or --model, not both", err=True)
        raise typer.Exit(2)
    path = schema if schema is not None else (model / SCHEMA_FILE if model is not None else None)
    if path is None:
        return None
    try:
        return FeatureSchema.load(path)
    except FileNotFoundError:
        typer.echo(f"error: {path}: feature schema not found", err=True)
    except (OSError, ValueError) as exc:  # unreadable, not JSON, not a schema, wrong version
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(f"error: {path}: not a usable feature schema ({reason})", err=True)
    raise typer.Exit(2)
