"""Human review against the real Tansu broker: POST /reviews and ``credit-scorer review submit`` publish
the reviewer's verdict to the decisions topic as the final decision linked to the original (same
application id), count the override, and refuse bad input with a 422 naming the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.exceptions import ReviewSubmitError
from api.models import ReviewRequest
from api.review_cli import submit_review
from credit_scorer.settings import RedisSettings
from devtools.harness import collect
from schemas.codec import decode_decision
from schemas.events import DecisionLabel
from tests.fixtures.kafka import run_async
from tests.integration.api.conftest import api_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def review_env(
    small_model_dir: Path,
    redis_settings: RedisSettings,
    kafka_bootstrap: str,
    make_topics: Callable[..., Any],
) -> Iterator[tuple[TestClient, str, str]]:
    topics = make_topics(2)
    base = api_settings(redis_settings, small_model_dir)
    kafka = base.kafka.model_copy(
        update={"bootstrap_servers": kafka_bootstrap, "decisions_topic": topics.decisions}
    )
    with TestClient(create_app(base.model_copy(update={"kafka": kafka}))) as client:
        yield client, kafka_bootstrap, topics.decisions


def overrides(client: TestClient, to: str) -> float:
    line = f'credit_scorer_overrides_total{{from="REFER",to="{to}"}}'
    [value] = [float(x.split()[-1]) for x in client.get("/metrics").text.splitlines() if x.startswith(line)]
    return value


def test_verdicts_are_published_as_final_decisions_and_counted(
    review_env: tuple[TestClient, str, str],
) -> None:
    client, bootstrap, topic = review_env
    assert overrides(client, "ACCORD") == overrides(client, "REFUS") == 0.0  # exported before any verdict
    body = {
        "application_id": "app-7",
        "decision": "ACCORD",
        "reviewer": "alice",
        "reason": "payslips checked",
    }
    response = client.post("/reviews", json={**body, "original_event_id": "e-7"})
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["application_id"] == "app-7" and answer["topic"] == topic and answer["decision"] == "ACCORD"
    # the CLI's path: the same route, through its client
    cli_answer = submit_review(client, ReviewRequest(application_id="app-8", decision="REFUS", reviewer="bob",
                                                     reason="income not verified"))  # fmt: skip
    assert overrides(client, "ACCORD") == overrides(client, "REFUS") == 1.0

    records = {r.key: r for r in run_async(collect(bootstrap, topic, 2, timeout_s=20))}
    assert set(records) == {b"app-7", b"app-8"}  # keyed by application id, as the original decision
    final = decode_decision(records[b"app-7"].value)
    assert (records[b"app-7"].partition, records[b"app-7"].offset) == (answer["partition"], answer["offset"])
    assert final.decision is DecisionLabel.ACCORD and final.event_id == answer["event_id"]
    assert final.review is not None and final.review.reviewer == "alice"
    assert final.review.reason == "payslips checked" and final.review.original_event_id == "e-7"
    assert final.review.original_decision is DecisionLabel.REFER
    assert final.probability_default is None and final.model_version is None and final.sk_id_curr is None
    other = decode_decision(records[b"app-8"].value)
    assert other.decision is DecisionLabel.REFUS and other.event_id == cli_answer["event_id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decision": "REFER"}, "decision"),  # a review ends the referral: ACCORD or REFUS
        ({"reviewer": ""}, "reviewer"),
        ({"reason": None}, "reason"),
        ({"application_id": "x" * 129}, "application_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_verdicts_are_422_naming_the_field(
    review_env: tuple[TestClient, str, str], change: dict[str, Any], field: str
) -> None:
    client, _, _ = review_env
    body = {"application_id": "app-9", "decision": "REFUS", "reviewer": "carol", "reason": "r", **change}
    response = client.post("/reviews", json={k: v for k, v in body.items() if v is not None})
    assert response.status_code == 422
    assert [e["loc"][-1] for e in response.json()["detail"]] == [field]
    if field != "colour":  # (the CLI has no option for an unknown field)
        with pytest.raises(ReviewSubmitError, match=f"API answered 422: field {field}") as info:
            submit_review(client, ReviewRequest.model_construct(**body))  # past the CLI's own check
        assert info.value.code == 2
    assert overrides(client, "REFUS") == 0.0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--decision", "REFER"], 2, "error: --decision: Input should be 'ACCORD' or 'REFUS'"),
        (["--reviewer", " "], 2, "error: --reviewer: String should have at least 1 character"),
        (["--api", "http://127.0.0.1:{port}"], 1, "error: API at http://127.0.0.1:{port} unreachable"),
    ],
)
def test_the_cli_refuses_in_one_line(args: list[str], code: int, message: str) -> None:
    from typer.testing import CliRunner

    from credit_scorer.cli import app
    from devtools.launchers import free_port

    port = str(free_port())
    given = {"--application-id": "a1", "--decision": "ACCORD", "--reviewer": "r", "--reason": "why"}
    given.update(zip(args[::2], (a.format(port=port) for a in args[1::2]), strict=True))
    result = CliRunner().invoke(app, ["review", "submit", *(x for kv in given.items() for x in kv)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == code and len(lines) == 1, result.output
    assert lines[0].startswith(message.format(port=port)), result.output
