"""``credit-scorer view serve``: the Streamlit app (officer view + monitoring page) on host:port.

The API it reads is ``settings.view.api_url`` (``CREDIT_SCORER_VIEW__API_URL``); the monitoring page
also scrapes ``CREDIT_SCORER_VIEW__METRICS_URLS`` (comma-separated /metrics URLs) besides the API's.
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="The credit officer's view (Streamlit).")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8501, "--port"),
    api_url: str | None = typer.Option(None, "--api-url", help="Default: settings.view.api_url."),
) -> None:
    """Run the Streamlit server (headless) until interrupted."""
    import os
    import sys
    from pathlib import Path

    from credit_scorer.cli_errors import cli_error

    if not 0 <= port <= 65535:
        raise cli_error(f"option --port must be in 0..65535, got {port}")
    if api_url:
        os.environ["CREDIT_SCORER_VIEW__API_URL"] = api_url  # the Streamlit script reads the settings
    script = Path(__file__).resolve().parent / "app.py"
    args = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    os.execv(sys.executable, args)
