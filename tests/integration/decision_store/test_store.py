"""The decisions table on real SQLite and real PostgreSQL: migrations, idempotent upserts, a review
beside its decision, a client's pages, the retention purge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from decision_store.migrate import current_revision, head_revision, upgrade
from decision_store.records import decode_decision
from decision_store.store import DecisionStore
from tests.fixtures.store import STORE_KINDS, decision_doc

NOW = datetime.now(UTC)


def row(application_id: str, client: int, **fields: object) -> dict[str, object]:
    decoded = decode_decision(orjson.dumps(decision_doc(application_id, client, **fields)), NOW)
    assert decoded is not None
    return decoded


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_store_keeps_each_decision_once_and_reviews_beside_it(
    kind: str, make_store_url: Callable[[str], str]
) -> None:
    store = DecisionStore.from_url(make_store_url(kind))
    try:
        upgrade(store.engine)
        upgrade(store.engine)  # idempotent
        assert current_revision(store.engine) == head_revision(store.engine) == "0001"

        batch = [row(f"app-{i}", 100 + i % 2) for i in range(6)]
        assert store.upsert(batch) == 6
        assert store.upsert(batch + batch[:2]) == 0  # redelivered: nothing new
        assert store.count() == 6

        review = {"reviewer": "alice", "reason": "checked", "original_decision": "REFER"}
        assert store.upsert([row("app-0", 100, decision="ACCORD", review=review)]) == 1
        records = store.by_application("app-0")
        assert [r["kind"] for r in records] == ["decision", "review"]
        assert records[1]["document"]["review"]["reviewer"] == "alice"
        assert records[0]["document"]["reasons"][0]["feature"] == "EXT_SOURCE_2"
        assert store.by_application("absent") == []

        page = store.by_client(100, limit=2, offset=0)
        rest = store.by_client(100, limit=10, offset=2)
        assert page.total == rest.total == 4  # 3 decisions + the review
        ids = [(r["application_id"], r["kind"]) for r in page.items + rest.items]
        assert len(set(ids)) == 4

        old = (NOW - timedelta(days=800)).isoformat()
        store.upsert([row("app-old", 100, decided_at=old)])
        assert store.purge(NOW - timedelta(days=760)) == 1
        assert store.count() == 7 and store.by_application("app-old") == []
    finally:
        store.close()
