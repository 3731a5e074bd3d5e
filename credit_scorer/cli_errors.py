"""The one way a CLI command reports bad input: a single `error: …` line on stderr and an exit code."""

from __future__ import annotations

import typer


def cli_error(message: object, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` as one line on stderr; return the ``typer.Exit`` to raise.

    Whitespace (newlines included) is folded so the message stays one line whatever an exception's text
    holds. Exit code 2 = bad input (file, row or field named in the message), 1 = runtime failure.
    """
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    return typer.Exit(code)
