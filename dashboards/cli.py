"""`credit-scorer dashboards …`: generate the Grafana dashboards and Prometheus rules, or check them."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _dashboards() -> None:
    """Grafana dashboards and Prometheus rules as code."""


@app.command()
def build(
    check: bool = typer.Option(
        False, "--check", help="Do not write: exit 1 if a committed file differs from the generated one."
    ),
    json_dir: Path | None = typer.Option(None, "--json-dir", help="Where to write the dashboard JSON."),
    rules_file: Path | None = typer.Option(None, "--rules-file", help="Where to write the rules YAML."),
) -> None:
    """Generate dashboards/json/*.json and dashboards/prometheus/credit_scorer.rules.yml."""
    from dashboards import build as builder
    from dashboards.exceptions import StaleArtifactError

    jdir = json_dir or builder.JSON_DIR
    rfile = rules_file or builder.RULES_FILE
    if check:
        try:
            paths = builder.check_all(jdir, rfile)
        except StaleArtifactError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{len(paths)} generated files up to date")
        return
    for path in builder.write_all(jdir, rfile):
        typer.echo(f"wrote {path}")


@app.command()
def verify(
    url: str = typer.Option("http://127.0.0.1:9090", "--url", help="Prometheus base URL."),
    window_s: float = typer.Option(300.0, "--window", help="Seconds of history the range queries cover."),
    rate_interval: str = typer.Option("1m", "--rate-interval", help="Value of Grafana's $__rate_interval."),
) -> None:
    """Evaluate every panel query and alert signal on a live Prometheus; exit 1 on any empty/error."""
    import httpx
    import yaml

    from dashboards import build as builder
    from dashboards.panels import DASHBOARDS
    from dashboards.verify import verify as run_checks

    boards = [builder.dashboard_model(uid) for uid in DASHBOARDS]
    rules = yaml.safe_load(builder.RULES_FILE.read_text())
    try:
        checks = run_checks(url, boards, rules, window_s=window_s, rate_interval=rate_interval)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach Prometheus at {url}: {exc}", err=True)
        raise typer.Exit(2) from None
    failed = [c for c in checks if not c.ok]
    for check in failed:
        typer.echo(str(check))
    typer.echo(f"{len(checks) - len(failed)}/{len(checks)} checks ok")
    if failed:
        raise typer.Exit(1)
