"""``credit-scorer view serve``: the Streamlit app (officer view + monitoring page) on host:port.

The API it reads is ``OFFICER_VIEW_API_URL`` (default http://127.0.0.1:8000); the monitoring page also
reads ``OFFICER_VIEW_METRICS_URLS`` (comma-separated /metrics URLs; default: the API's).
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="The credit officer's view (Streamlit).")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8501, "--port"),
    api_url: str | None = typer.Option(None, "--api-url", help="Default: $OFFICER_VIEW_API_URL."),
) -> None:
    """Run the Streamlit server (headless) until interrupted."""
    import os
    import sys
    from pathlib import Path

    from credit_scorer.cli_errors import cli_error

    if not 0 <= port <= 65535:
        raise cli_error(f"option --port must be in 0..65535, got {port}")
    if api_url:
        os.environ["OFFICER_VIEW_API_URL"] = api_url
    script = Path(__file__).resolve().parent / "app.py"
    args = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    os.execv(sys.executable, args)
