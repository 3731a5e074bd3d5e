"""`credit-scorer model …`: the registry's versions and aliases — what the workers and the API serve.

``promote VERSION`` points an alias (``champion`` by default, ``--alias challenger``) at a version;
workers and the API watching that alias move to it without a restart (``model.watch_interval_s``).
``demote`` removes an alias. Order of a change of feature schema: load the new cache, switch it, then
promote (docs/ARCHITECTURE.md, "Model lifecycle"). Errors: one line on stderr, exit code 2.
"""

from __future__ import annotations

import typer

from credit_scorer.cli_errors import cli_error

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

ALIAS = typer.Option("champion", "--alias", help="The alias to move (champion, challenger, …).")


@app.callback()
def _model() -> None:
    """Registered model versions and their aliases (MLflow registry)."""


def _registry():  # type: ignore[no-untyped-def]
    from credit_scorer.model_source import open_registry
    from credit_scorer.settings import get_settings
    from training.exceptions import RegistryError

    try:
        return open_registry(get_settings())
    except RegistryError as exc:
        raise cli_error(exc) from None


@app.command("list")
def list_command() -> None:
    """Every registered version, newest first: aliases, model card version, feature schema."""
    from training.exceptions import RegistryError

    registry = _registry()
    try:
        versions = registry.versions()
    except RegistryError as exc:
        raise cli_error(exc) from None
    if not versions:
        typer.echo(f"{registry.name}: no version registered")
        return
    for v in versions:
        aliases = ",".join(v.aliases) or "-"
        typer.echo(f"{v.version}\t{aliases}\t{v.model_version}\tfeatures {v.feature_schema_version}")


@app.command("promote")
def promote_command(
    version: str = typer.Argument(..., help="Registered version number."), alias: str = ALIAS
) -> None:
    """Point ALIAS at VERSION (the watchers pick it up at their next poll)."""
    from training.exceptions import RegistryError

    registry = _registry()
    try:
        registry.set_alias(alias, version)
    except RegistryError as exc:
        raise cli_error(exc) from None
    typer.echo(f"{registry.name}: {alias} -> version {version}")


@app.command("demote")
def demote_command(alias: str = ALIAS) -> None:
    """Remove ALIAS (workers keep serving what they loaded; new ones cannot start on it)."""
    from training.exceptions import RegistryError

    registry = _registry()
    try:
        version = registry.delete_alias(alias)
    except RegistryError as exc:
        raise cli_error(exc) from None
    typer.echo(f"{registry.name}: {alias} removed (was version {version})")
