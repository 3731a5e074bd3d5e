"""The `credit-scorer` command: one typer root, each package mounts its own sub-app.

Sub-apps are imported lazily-friendly: their modules import heavy libraries inside the commands.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="credit-scorer",
    help="Event-driven credit scorer for Prêt à dépenser (Home Credit schema).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# (sub-command name, module, attribute, help)
_SUBAPPS = (
    ("data", "synthetic_data.cli", "app", "Synthetic Home Credit data."),
    ("features", "feature_loader.cli", "app", "Build client features from the raw tables."),
    ("cache", "feature_cache.cli", "app", "Client-feature cache in Redis."),
    ("train", "training.cli", "app", "Train, evaluate and register the LightGBM model."),
    ("model", "training.model_cli", "app", "Registered model versions and aliases (MLflow)."),
    ("stream", "stream_app.cli", "app", "Stream worker, producer and the embedded demo."),
    ("replay", "replay.cli", "app", "Rescore a topic's history with another model."),
    ("api", "api.cli", "app", "The REST API."),
    ("store", "decision_store.cli", "app", "The decision store: sink, migrations, retention purge."),
    ("view", "officer_view.cli", "app", "The credit officer's view and the monitoring page (Streamlit)."),
    ("review", "api.review_cli", "app", "Human review of REFER decisions (through the API)."),
    ("dashboards", "dashboards.cli", "app", "Grafana dashboards as code."),
)

# Modules that add commands to a mounted group (developer tooling stays out of the packages it extends).
_EXTENSIONS = ("devtools.cli",)  # `stream produce`, `stream demo` on stream_app.cli.app

for _name, _module, _attr, _help in _SUBAPPS:
    try:
        _sub = getattr(importlib.import_module(_module), _attr)
    except ModuleNotFoundError as exc:  # a package not yet present in this checkout
        if exc.name != _module:
            raise
        continue
    app.add_typer(_sub, name=_name, help=_help)

for _module in _EXTENSIONS:
    importlib.import_module(_module)


def main() -> None:
    app()
