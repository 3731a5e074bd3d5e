"""``credit-scorer store …``: the sink process, schema migrations, status and the retention purge.

Exit codes: 0 done; 1 the database could not be reached (one line naming it); 2 bad configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from credit_scorer.cli_errors import cli_error

if TYPE_CHECKING:
    from credit_scorer.settings import Settings
    from decision_store.store import DecisionStore

app = typer.Typer(no_args_is_help=True, help="The decision store (decisions topic → database).")


def _settings() -> Settings:
    from pydantic import ValidationError

    from credit_scorer.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = "__".join(str(p).upper() for p in first["loc"])
        raise cli_error(f"invalid setting CREDIT_SCORER_{field}: {first['msg']}") from None


def _open_store() -> tuple[Settings, DecisionStore]:
    from sqlalchemy.exc import ArgumentError

    from decision_store.store import DecisionStore

    settings = _settings()
    url = settings.store.resolved_url(settings.paths.data_dir)
    if url.startswith("sqlite:///"):
        settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return settings, DecisionStore.from_url(url)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise cli_error(f"invalid setting CREDIT_SCORER_STORE__URL: {exc}") from None


@app.command()
def sink() -> None:
    """Consume the decisions topic into the store until SIGTERM/SIGINT (migrates the schema first)."""
    import asyncio
    import logging
    import signal

    from prometheus_client import start_http_server

    from credit_scorer.metrics import StoreMetrics
    from decision_store.sink import StoreSink

    settings, store = _open_store()
    store.close()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics = StoreMetrics()
    if settings.store.metrics_port:
        start_http_server(settings.store.metrics_port, "127.0.0.1", registry=metrics.registry)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await StoreSink(settings, metrics, stopping).run()

    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Upgrade the store's schema to the newest revision."""
    from decision_store.migrate import current_revision, upgrade
    from decision_store.store import describe

    _, store = _open_store()
    try:
        upgrade(store.engine)
        typer.echo(f"store schema at revision {current_revision(store.engine)}")
    except Exception as exc:
        raise cli_error(f"store migration failed: {describe(exc)}", 1) from None
    finally:
        store.close()


@app.command()
def status() -> None:
    """Schema revision and number of stored records."""
    from decision_store.migrate import current_revision, head_revision
    from decision_store.store import describe

    _, store = _open_store()
    try:
        engine = store.engine
        current, head = current_revision(engine), head_revision(engine)
        count = store.count() if current else 0
        typer.echo(f"url={engine.url.render_as_string()} revision={current} head={head} records={count}")
    except Exception as exc:
        raise cli_error(f"store unreachable: {describe(exc)}", 1) from None
    finally:
        store.close()


@app.command()
def purge(
    months: int | None = typer.Option(None, "--months", help="Default: settings.store.retention_months."),
) -> None:
    """Delete the records decided longer ago than the retention period (25 months by default)."""
    from datetime import UTC, datetime

    from decision_store.retention import cutoff
    from decision_store.store import describe

    settings, store = _open_store()
    keep = settings.store.retention_months if months is None else months
    if keep < 1:
        raise cli_error(f"option --months must be at least 1, got {keep}")
    before = cutoff(datetime.now(UTC), keep)
    try:
        deleted = store.purge(before)
    except Exception as exc:
        raise cli_error(f"store purge failed: {describe(exc)}", 1) from None
    finally:
        store.close()
    typer.echo(f"purged {deleted} records decided before {before.isoformat()}")
