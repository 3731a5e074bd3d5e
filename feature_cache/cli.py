"""`credit-scorer cache …`: load, switch, drop and inspect the client-feature cache in Redis.

Connection settings come from ``settings.redis`` (``CREDIT_SCORER_REDIS__URL``, ``__PASSWORD``, ``__TLS``,
``__DB``, ``__KEY_PREFIX``, ``__TTL_S``); ``--url`` / ``--prefix`` override them for one command. Any
error ends the command with exit code 2 and a one-line message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import typer

from credit_scorer.cli_errors import cli_error
from feature_cache.exceptions import FeatureCacheError
from feature_loader.exceptions import FeatureLoaderError

if TYPE_CHECKING:
    from credit_scorer.settings import RedisSettings
    from feature_cache.store import SyncClient

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="Client-feature cache in Redis.")

URL_OPTION = typer.Option(None, "--url", help="Redis URL (default: settings.redis.url).")
PREFIX_OPTION = typer.Option(None, "--prefix", help="Key prefix (default: settings.redis.key_prefix).")


def _redis_settings(url: str | None, prefix: str | None) -> RedisSettings:
    from credit_scorer.settings import get_settings

    settings = get_settings().redis
    update = {k: v for k, v in (("url", url), ("key_prefix", prefix)) if v is not None}
    return settings.model_copy(update=update) if update else settings


@contextmanager
def _client(settings: RedisSettings) -> Iterator[SyncClient]:
    from feature_cache.store import create_sync_redis_client

    try:
        client = create_sync_redis_client(settings)
    except FeatureCacheError as exc:
        raise cli_error(str(exc)) from None
    try:
        yield client
    # FeatureLoaderError: an unreadable feature table; ValueError: a malformed version or prefix
    except (FeatureCacheError, FeatureLoaderError, ValueError) as exc:
        raise cli_error(str(exc)) from None
    finally:
        client.close()


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


@app.command()
def load(
    features: Path | None = typer.Option(
        None, "--features", help="Feature-build folder (features.parquet + feature_schema.json)."
    ),
    ttl: int | None = typer.Option(
        None, "--ttl", min=1, help="TTL in seconds (default: settings.redis.ttl_s)."
    ),
    switch: bool = typer.Option(False, "--switch", help="Make the loaded version live when complete."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    url: str | None = URL_OPTION,
    prefix: str | None = PREFIX_OPTION,
) -> None:
    """Load a feature build into its own versioned keyspace (readers of the live version are undisturbed)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from credit_scorer.settings import get_settings
    from feature_cache.loader import load_features, switch_version

    settings = _redis_settings(url, prefix)
    folder = features if features is not None else get_settings().paths.features_dir
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("loading clients"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
    )
    task = bar.add_task("load", total=None)
    done = [0]

    def on_progress(n: int) -> None:
        done[0] += n
        bar.advance(task, n)

    on_start: Callable[[int], None] = lambda n: bar.update(task, total=n)  # noqa: E731
    with _client(settings) as client:
        try:
            with bar:
                summary = load_features(
                    client,
                    folder,
                    settings.key_prefix,
                    ttl_s=ttl if ttl is not None else settings.ttl_s,
                    on_start=on_start,
                    on_progress=on_progress,
                )
        except KeyboardInterrupt:
            raise cli_error(
                f"load of {folder} interrupted after {done[0]:,} clients: that version is not complete "
                "(it cannot be switched live); re-run the same command to complete it"
            ) from None
        typer.echo(
            f"loaded feature version {summary.version}: {summary.clients:,} clients, "
            f"{summary.bytes / 1e6:,.1f} MB in {summary.seconds:.2f} s "
            f"({summary.clients_per_s:,.0f} clients/s)"
        )
        if switch:
            previous = switch_version(client, settings.key_prefix, summary.version)
            typer.echo(f"live feature version: {summary.version} (was {previous or 'none'})")


@app.command()
def switch(
    version: str = typer.Argument(..., help="Feature-schema version to make live."),
    force: bool = typer.Option(False, "--force", help="Switch even if its load is not complete."),
    url: str | None = URL_OPTION,
    prefix: str | None = PREFIX_OPTION,
) -> None:
    """Atomically make a loaded version the live one."""
    from feature_cache.loader import switch_version

    settings = _redis_settings(url, prefix)
    with _client(settings) as client:
        previous = switch_version(client, settings.key_prefix, version, force=force)
    typer.echo(f"live feature version: {version} (was {previous or 'none'})")


@app.command()
def drop(
    version: str = typer.Argument(..., help="Feature-schema version to delete."),
    force: bool = typer.Option(False, "--force", help="Drop it even if it is live (nothing is live after)."),
    url: str | None = URL_OPTION,
    prefix: str | None = PREFIX_OPTION,
) -> None:
    """Delete every key of a version (SCAN + UNLINK in batches)."""
    from feature_cache.loader import drop_version

    settings = _redis_settings(url, prefix)
    with _client(settings) as client:
        removed = drop_version(client, settings.key_prefix, version, force=force)
    typer.echo(f"dropped feature version {version}: {removed:,} keys")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    url: str | None = URL_OPTION,
    prefix: str | None = PREFIX_OPTION,
) -> None:
    """The live version and every loaded version (clients, bytes, loaded at, complete; --json: all)."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from feature_cache.loader import cache_status

    settings = _redis_settings(url, prefix)
    with _client(settings) as client:
        report = cache_status(client, settings.key_prefix)
    if as_json:
        typer.echo(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"feature cache {report.where} prefix {report.prefix!r}")
    table.add_column("version", no_wrap=True, min_width=16)
    for column in ("live", "ok", "clients", "MB", "feat.", "loaded (UTC)"):
        table.add_column(column, no_wrap=True)
    for v in report.versions:
        table.add_row(
            v.version,
            "*" if v.live else "",
            "yes" if v.complete else "NO (partial)",
            f"{v.clients:,}" if v.clients is not None else "-",
            f"{v.bytes / 1e6:,.1f}" if v.bytes is not None else "-",
            str(v.n_features or "-"),
            _when(v.loaded_at),
        )
    Console().print(table)
    typer.echo(f"live feature version: {report.current or 'none'}")
