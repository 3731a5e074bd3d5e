"""Decoding decision records into rows: every contract version stored, bad records named."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from decision_store.exceptions import UndecodableDecisionError
from decision_store.records import decode_decision
from decision_store.retention import cutoff
from tests.fixtures.store import decision_doc

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_a_v1_decision_becomes_a_decision_row_with_the_whole_document() -> None:
    doc = decision_doc("app-1", 42, decided_at="2026-12-01T10:00:00+01:00")
    row = decode_decision(orjson.dumps(doc), NOW)
    assert row is not None
    assert (row["application_id"], row["kind"], row["sk_id_curr"]) == ("app-1", "decision", 42)
    assert row["decided_at"] == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert row["policy_version"] is None
    assert row["document"] == doc


def test_later_contract_fields_are_kept_and_a_review_is_its_own_kind() -> None:
    review = {"reviewer": "alice", "reason": "income proof", "original_decision": "REFER"}
    doc = decision_doc(
        "app-2", 7, decision="ACCORD", policy_version="p-3", review=review, rules=[{"id": "R1"}], new=1
    )
    row = decode_decision(orjson.dumps(doc), NOW)
    assert row is not None
    assert (row["kind"], row["policy_version"]) == ("review", "p-3")
    assert row["document"]["rules"] == [{"id": "R1"}] and row["document"]["new"] == 1


def test_a_replay_is_not_stored() -> None:
    assert decode_decision(orjson.dumps(decision_doc("a", 1, is_replay=True)), NOW) is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"", "empty"),
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (orjson.dumps({**decision_doc("a", 1), "sk_id_curr": "x"}), "sk_id_curr"),
        (orjson.dumps(decision_doc("a", 1, probability_default=1.5)), "probability_default"),
        (orjson.dumps(decision_doc("", 1)), "application_id"),
        (orjson.dumps(decision_doc("a", 1, decided_at="yesterday")), "decided_at"),
        (orjson.dumps(decision_doc("a", 1, review="yes")), "review"),
    ],
)
def test_an_undecodable_record_names_what_is_wrong(payload: bytes, field: str) -> None:
    with pytest.raises(UndecodableDecisionError, match=field):
        decode_decision(payload, NOW)


def test_the_retention_cutoff_counts_calendar_months() -> None:
    assert cutoff(datetime(2026, 12, 2, tzinfo=UTC), 25) == datetime(2024, 11, 2, tzinfo=UTC)
    assert cutoff(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
