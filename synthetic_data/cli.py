"""``credit-scorer data …``: synthetic Home Credit data (``synth``) and its profile (``profile``).

Bad arguments exit with code 2 and a one-line message naming the argument, file or folder.
"""

from __future__ import annotations

from pathlib import Path

import typer

from credit_scorer.cli_errors import cli_error

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

_COMPRESS_DEFAULT_BELOW = 0.5


@app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (created if missing; files overwritten)."),
    scale: float = typer.Option(1.0, "--scale", help="1.0 = full size (307,511 train + 48,744 test)."),
    seed: int = typer.Option(0, "--seed", help="Same seed and scale → byte-identical files."),
    compress: bool | None = typer.Option(
        None,
        "--compress/--no-compress",
        help=f"gzip (slow) or plain CSV. Default: gzip below scale {_COMPRESS_DEFAULT_BELOW}, plain above.",
    ),
    profile: Path | None = typer.Option(None, "--profile", help="Profile JSON (default: the committed one)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Write the eight Home Credit files, synthetic, at any scale."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    from synthetic_data.exceptions import SyntheticDataError
    from synthetic_data.synth import synthesize

    gzip_it = compress if compress is not None else scale < _COMPRESS_DEFAULT_BELOW
    console = Console(stderr=True)
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
            transient=True,
        ) as bar:
            task = bar.add_task("clients", total=None)

            def _progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = synthesize(
                out, scale=scale, seed=seed, compress=gzip_it, progress=_progress, profile_path=profile
            )
    except SyntheticDataError as exc:
        raise cli_error(str(exc)) from None
        return
    table = Table(title=f"synthetic Home Credit data in {summary.out_dir} (scale {scale:g}, seed {seed})")
    table.add_column("file")
    table.add_column("rows", justify="right")
    table.add_column("MB", justify="right")
    table.add_column("write s", justify="right")
    for f in summary.files:
        table.add_row(f.path.name, f"{f.rows:,}", f"{f.bytes / 1e6:,.1f}", f"{f.seconds:.1f}")
    rows = sum(f.rows for f in summary.files)
    table.add_row("total (wall)", f"{rows:,}", f"{summary.total_bytes / 1e6:,.1f}", f"{summary.seconds:.1f}")
    Console().print(table)


@app.command("profile")
def profile(
    sample: Path | None = typer.Option(
        None, "--sample", help="Real sample folder (default: settings raw_dir)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Profile JSON (default: synthetic_data/profile.json)."
    ),
) -> None:
    """Learn the synthetic generator's profile (quantiles, missing rates, level frequencies) from a sample."""
    from credit_scorer.settings import get_settings
    from feature_loader.exceptions import FeatureLoaderError
    from synthetic_data.exceptions import SyntheticDataError
    from synthetic_data.profile import DEFAULT_PROFILE_PATH, build_profile, write_profile

    sample_dir = sample or get_settings().paths.raw_dir
    target = out or DEFAULT_PROFILE_PATH
    try:
        size = write_profile(build_profile(sample_dir), target)
    except (SyntheticDataError, FeatureLoaderError) as exc:  # FeatureLoaderError: a sample file or column
        raise cli_error(str(exc)) from None
        return
    typer.echo(f"profile of {sample_dir} written to {target} ({size / 1024:.0f} KiB)")
