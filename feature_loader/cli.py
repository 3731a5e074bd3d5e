"""`credit-scorer features …`: build the client features from the raw tables."""

from __future__ import annotations

from pathlib import Path

import typer

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
) -> None:
    """Write features.parquet, feature_schema.json and build_info.json to OUT."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from credit_scorer.settings import get_settings
    from feature_loader.build import build_features
    from feature_loader.exceptions import FeatureLoaderError
    from feature_loader.feature_schema import FeatureSource

    settings = get_settings()
    raw_dir = raw or settings.paths.raw_dir
    out_dir = out or settings.paths.features_dir
    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("reading application tables", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"{stage} done", completed=done, total=total)

        try:
            result = build_features(raw_dir, out_dir, progress=progress)
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
        f"{len(result.schema)} features {by_source}, schema {result.schema.version}, "
        f"{result.seconds['total']:.1f} s → {out_dir}"
    )
