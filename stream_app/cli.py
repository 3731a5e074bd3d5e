"""``credit-scorer stream …``: the worker command.

Developer tooling (``produce``, ``demo``) registers its commands on this same group from ``devtools.cli``
(the root CLI imports it), so the worker package never imports its own tooling.
"""

from __future__ import annotations

import sys
from enum import StrEnum

import typer

app = typer.Typer(no_args_is_help=True, help="Stream worker, producer and the embedded demo.")


class Engine(StrEnum):
    batch = "batch"
    faust = "faust"


@app.command()
def worker(
    engine: Engine | None = typer.Option(
        None, "--engine", help="batch (aiokafka micro-batches, default) or faust (Faust agent)."
    ),
) -> None:
    """Run one stream worker: applications topic → decisions topic (settings from CREDIT_SCORER_…)."""
    import logging

    from credit_scorer.settings import get_settings
    from stream_app.exceptions import StreamError
    from stream_app.startup import start_worker

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        start_worker(settings, engine.value if engine else None)
    except StreamError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
