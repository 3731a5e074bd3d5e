"""``credit-scorer api serve``: the REST API under uvicorn (settings from CREDIT_SCORER_…).

Exit codes: 0 stopped normally; 1 uvicorn failed (e.g. port in use, logged by uvicorn); 2 bad
configuration (an invalid CREDIT_SCORER_* value, a bad Redis URL, a bad option, a bad policy file), with one
line naming it.
"""

from __future__ import annotations

import typer

from credit_scorer.cli_errors import cli_error

app = typer.Typer(no_args_is_help=True, help="The REST API.")


@app.command()
def serve(
    host: str | None = typer.Option(None, "--host", help="Default: settings.api.host."),
    port: int | None = typer.Option(None, "--port", help="Default: settings.api.port."),
) -> None:
    """Serve POST /predict, GET /health, GET /metrics, POST /applications and the docs at /docs."""
    import logging

    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from credit_scorer.settings import get_settings
    from feature_cache.exceptions import FeatureCacheError
    from feature_cache.store import create_redis_client
    from scoring.exceptions import PolicyError
    from scoring.policy_file import load_catalogue, load_policy

    if port is not None and not 0 <= port <= 65535:
        raise cli_error(f"option --port must be in 0..65535, got {port}")
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = "__".join(str(p).upper() for p in first["loc"])
        raise cli_error(f"invalid setting CREDIT_SCORER_{field}: {first['msg']}") from None
    try:
        create_redis_client(settings.redis)  # validates the URL; connects only on first use
        load_policy(settings.policy.path)  # a bad policy file stops the start (the rule and field named)
        load_catalogue(settings.policy.reason_codes)
    except (FeatureCacheError, PolicyError) as exc:
        raise cli_error(str(exc)) from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=settings.api.port if port is None else port,
        log_level=settings.log_level.lower(),
        access_log=settings.api.access_log,
        loop="uvloop",
        http="httptools",
    )
