"""``credit-scorer review submit``: a reviewer's verdict on a REFER, sent to the API's ``POST /reviews``
(the one place that validates it, publishes the final decision and counts the override).

Exit codes: 0 accepted (one line: the final decision's event id, topic, partition and offset); 2 bad
input (checked here first, or the API's 422), one line naming the field; 1 the API or the broker is
unreachable, one line saying which.
"""

from __future__ import annotations

from typing import Any

import typer

from api.exceptions import ReviewSubmitError
from api.models import ReviewRequest
from credit_scorer.cli_errors import cli_error

app = typer.Typer(no_args_is_help=True, help="Human review of REFER decisions.")


def submit_review(client: Any, request: ReviewRequest) -> dict[str, Any]:
    """POST the verdict with ``client`` (an httpx client on the API); the API's answer, or
    ReviewSubmitError (code 2: refused input, 1: unavailable) with a one-line message."""
    import httpx

    try:
        response = client.post("/reviews", json=request.model_dump(exclude_none=True))
    except httpx.HTTPError as exc:
        raise ReviewSubmitError(f"API at {client.base_url} unreachable: {exc}", 1) from None
    if response.status_code == 202:
        return dict(response.json())
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    code = 2 if response.status_code in (400, 422) else 1
    raise ReviewSubmitError(f"API answered {response.status_code}: {_one_line(detail)}", code)


def _one_line(detail: object) -> str:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):  # FastAPI's validation errors
        first = detail[0]
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return f"field {field}: {first.get('msg')}"
    return str(detail)


@app.command()
def submit(
    application_id: str = typer.Option(..., "--application-id", help="The referred application."),
    decision: str = typer.Option(..., "--decision", help="ACCORD or REFUS."),
    reviewer: str = typer.Option(..., "--reviewer", help="Who decided."),
    reason: str = typer.Option(..., "--reason", help="Why, in words."),
    original_event_id: str | None = typer.Option(None, "--original-event-id", help="The REFER's event id."),
    api: str | None = typer.Option(None, "--api", help="API base URL (default: settings.api host and port)."),
) -> None:
    """Send a verdict: published to the decisions topic as the final decision of the application."""
    import httpx
    from pydantic import ValidationError

    from credit_scorer.settings import get_settings

    fields = {"application_id": application_id, "decision": decision, "reviewer": reviewer, "reason": reason}
    try:
        request = ReviewRequest.model_validate({**fields, "original_event_id": original_event_id})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise cli_error(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}", 2) from None
    settings = get_settings()
    base = api or f"http://{settings.api.host}:{settings.api.port}"
    with httpx.Client(base_url=base, timeout=settings.api.publish_timeout_s + 5) as client:
        try:
            answer = submit_review(client, request)
        except ReviewSubmitError as exc:
            raise cli_error(str(exc), exc.code) from None
    typer.echo(
        f"{answer['decision']} for {answer['application_id']}: event {answer['event_id']} on "
        f"{answer['topic']} partition {answer['partition']} offset {answer['offset']}"
    )
