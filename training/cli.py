"""`credit-scorer train …`: train, evaluate and register the LightGBM model; fetch a registered version.

Bad input (missing or invalid feature directory, no labelled rows, unknown registry version) exits
with code 2 and one line on stderr naming the file or field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from credit_scorer.cli_errors import cli_error

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _train() -> None:
    """Train, evaluate and register the LightGBM model."""


def _target(data_dir: Path | None = None, tracking_uri: str | None = None) -> Any:
    from credit_scorer.settings import get_settings
    from training.registry import MlflowTarget

    s = get_settings()
    return MlflowTarget.from_settings(
        data_dir or s.paths.data_dir,
        tracking_uri or s.mlflow.tracking_uri,
        s.mlflow.experiment_name,
        s.mlflow.registered_model_name,
    )


@app.command("run")
def run_command(
    features: Path | None = typer.Option(
        None, "--features", help="Feature build output [default: settings.paths.features_dir]."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Models folder [default: settings.paths.models_dir]."
    ),
    register: bool = typer.Option(True, "--register/--no-register", help="Register the model in MLflow."),
    folds: int = typer.Option(5, "--folds", min=2, max=20, help="Stratified CV folds."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the folds and LightGBM."),
    holdout: float = typer.Option(0.2, "--holdout", min=0.05, max=0.5, help="Held-out share."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write PNG plots to <model>/plots/."),
    weighted: bool = typer.Option(
        False, "--weighted/--unweighted", help="Weigh defaulters by negatives/positives (then calibrate)."
    ),
    calibration: str = typer.Option(
        "identity", "--calibration", help="identity | isotonic | platt, fitted on out-of-fold scores."
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow server [default: settings, else sqlite under data_dir]."
    ),
) -> None:
    """Train on FEATURES, save the verified model under OUT/<model_version>/ and register it."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from credit_scorer.settings import get_settings
    from training.exceptions import TrainingError
    from training.train import TrainConfig, train_model

    settings = get_settings()
    features_dir = features or settings.paths.features_dir
    models_dir = out or settings.paths.models_dir
    if calibration not in ("identity", "isotonic", "platt"):
        raise cli_error(f"--calibration: expected identity, isotonic or platt, got {calibration!r}")
    config = TrainConfig(
        folds=folds,
        seed=seed,
        holdout=holdout,
        plots=plots,
        imbalance=weighted,
        calibration=calibration,  # type: ignore[arg-type]  # checked just above
        fairness_min_group_decisions=settings.fairness.min_group_decisions,
    )
    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    live = err.is_terminal  # no bar (and no stray newline) when stderr is a log or a pipe
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True, disable=not live) as bar:
        task = bar.add_task(f"loading {features_dir}", total=config.steps())
        failure: str | None = None

        def progress(message: str) -> None:
            bar.update(task, description=message, advance=1)

        try:
            result = train_model(features_dir, models_dir, config, progress)
        except TrainingError as exc:
            failure = str(exc)
    if failure is not None:  # after the progress bar is gone: one clean line on stderr
        raise cli_error(failure)
    registration = None
    if register:
        from training.exceptions import RegistryError
        from training.registry import register_model_dir

        with err.status("registering in MLflow"):
            try:
                registration = register_model_dir(result.model_dir, _target(tracking_uri=tracking_uri))
            except RegistryError as exc:
                raise cli_error(f"model saved in {result.model_dir} but not registered: {exc}", 1) from None
    Console().print(summary_table(result.card, result.model_dir, result.seconds, registration))


def summary_table(card: Any, model_dir: Path, seconds: float | None, registration: Any = None) -> Any:
    from rich.table import Table

    m, cm = card.metrics, card.confusion_matrix
    nan = float("nan")  # metrics an older card lacks
    table = Table(title=f"model {card.model_version}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("directory", str(model_dir)),
        ("feature schema", f"{card.feature_schema_version} ({len(card.features)} features)"),
        (
            "training data",
            f"{card.training_data.rows:,} labelled rows, {card.training_data.positives:,} defaults; "
            f"held-out {card.training_data.holdout_rows or 0:,}",
        ),
        ("trees", f"{int(m.get('n_estimators', 0))} (CV AUC {m.get('cv_auc_mean', float('nan')):.4f})"),
        ("held-out AUC", f"{m['auc']:.4f}"),
        ("threshold", f"{card.threshold:.4f}  (REFUS when P(default) ≥ threshold)"),
        (
            "held-out cost",
            f"{m['cost_at_threshold']:,.0f} at threshold · {m['best_cost']:,.0f} best possible · "
            f"{m['cost_at_0_5']:,.0f} at 0.5  "
            f"({card.cost_matrix['fn']:g}·FN + {card.cost_matrix['fp']:g}·FP)",
        ),
        ("confusion", f"TN {cm['tn']}  FP {cm['fp']}  FN {cm['fn']}  TP {cm['tp']}"),
        (
            "calibration",
            f"{card.calibration.method}: Brier {m['brier']:.4f} "
            f"(base rate {m.get('brier_base_rate', nan):.4f}), "
            f"log loss {m.get('log_loss', nan):.4f}, ECE {m.get('ece', nan):.4f}",
        ),
    ]
    if card.unknown_client_path is not None:
        rows.append(("unknown clients", card.unknown_client_path.why))
    rows += _fairness_rows(card.fairness)
    if seconds is not None:
        rows.append(("time", f"{seconds:.1f} s"))
    if registration is not None:
        rows.append(
            ("MLflow", f"{registration.name} version {registration.version} (run {registration.run_id})")
        )
    for k, v in rows:
        table.add_row(k, v)
    return table


def _fairness_rows(fairness: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Disparate impact by segment family (model card ``fairness``; an older card has none)."""
    if not fairness:
        return []
    from training.fairness import summary_line

    k = fairness["holdout"]["min_group_decisions"]
    return [
        (f"disparate impact ({label})", summary_line(fairness[part]) + f"  (groups ≥ {k} rows)")
        for part, label in (("holdout", "held-out"), ("out_of_fold", "out-of-fold"))
        if part in fairness
    ]


@app.command("show")
def show_command(
    model: Path | None = typer.Argument(None, help="Model directory [default: the newest under models_dir]."),
) -> None:
    """Verify a model directory and print its card's summary."""
    from rich.console import Console

    from credit_scorer.settings import get_settings
    from scoring.exceptions import ScoringError
    from scoring.model import load_model, resolve_model_dir

    settings = get_settings()
    try:
        loaded = load_model(resolve_model_dir(settings.paths.models_dir, model))
    except ScoringError as exc:
        raise cli_error(str(exc)) from None
    Console().print(summary_table(loaded.card, loaded.path, None))


@app.command("fetch")
def fetch_command(
    version: str = typer.Argument(..., help='Registered version number, or "latest".'),
    dest: Path | None = typer.Option(None, "--dest", help="Folder to write into [default: models_dir]."),
    name: str | None = typer.Option(None, "--name", help="Registered model name [default: settings]."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow server."),
) -> None:
    """Download a registered model version into a verified local model directory."""
    from credit_scorer.settings import get_settings
    from training.exceptions import RegistryError
    from training.registry import fetch_model_version

    settings = get_settings()
    target = _target(tracking_uri=tracking_uri)
    try:
        path = fetch_model_version(
            name or target.registered_model_name, version, dest or settings.paths.models_dir, target
        )
    except RegistryError as exc:
        raise cli_error(str(exc)) from None
    typer.echo(str(path))


@app.command("baseline")
def baseline_command(
    raw: Path | None = typer.Option(None, "--raw", help="Raw CSV folder [default: settings.paths.raw_dir]."),
    seed: int = typer.Option(0, "--seed"),
    holdout: float = typer.Option(0.2, "--holdout", min=0.05, max=0.5),
) -> None:
    """Default LightGBM on the raw application columns, same held-out split: the reference AUC."""
    from credit_scorer.settings import get_settings
    from training.baseline import run_baseline
    from training.exceptions import RawDataError

    try:
        r = run_baseline(raw or get_settings().paths.raw_dir, seed=seed, holdout=holdout)
    except RawDataError as exc:
        raise cli_error(str(exc)) from None
    typer.echo(
        f"baseline (default LightGBM, {r.features} raw application columns, {r.rows:,} labelled rows): "
        f"held-out AUC {r.auc:.4f}, best possible cost {r.best_cost:,.0f}, cost at 0.5 {r.cost_at_0_5:,.0f}, "
        f"Brier {r.brier:.4f} on {r.holdout_rows:,} held-out applicants"
    )


@app.command("evaluate")
def evaluate_command(
    raw: Path | None = typer.Option(None, "--raw", help="Raw CSV folder [default: settings.paths.raw_dir]."),
    work: Path | None = typer.Option(
        None, "--work", help="Split, builds and models, reused when present [default: <data_dir>/evaluation]."
    ),
    out: Path = typer.Option(Path("bench/results"), "--out", help="Folder of the report files."),
    seed: int = typer.Option(0, "--seed"),
    holdout: float = typer.Option(0.2, "--holdout", min=0.05, max=0.5),
) -> None:
    """Decision quality on an honest split: known vs unknown clients, today's vs the new model.

    Writes OUT/decision_quality.json, .md and _reliability.png."""
    import orjson

    from credit_scorer.settings import get_settings
    from feature_loader.exceptions import FeatureLoaderError
    from training.decision_quality import evaluate, report_markdown
    from training.exceptions import TrainingError

    settings = get_settings()
    out.mkdir(parents=True, exist_ok=True)
    try:
        report = evaluate(
            raw or settings.paths.raw_dir,
            work or settings.paths.data_dir / "evaluation",
            seed=seed,
            fraction=holdout,
            progress=lambda m: typer.echo(m, err=True),
            reliability_png=out / "decision_quality_reliability.png",
            min_group_decisions=settings.fairness.min_group_decisions,
        )
    except (TrainingError, FeatureLoaderError) as exc:
        raise cli_error(str(exc)) from None
    (out / "decision_quality.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    md = report_markdown(report, "credit-scorer train evaluate")
    (out / "decision_quality.md").write_text(md, encoding="utf-8")
    typer.echo(md)
