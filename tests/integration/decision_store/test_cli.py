"""``credit-scorer store migrate|status|purge`` on a real SQLite file, and the migration's schema equal
to the table the code writes (alembic's autogenerate finds nothing to change), on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from credit_scorer.cli import app
from credit_scorer.settings import get_settings
from decision_store.migrate import upgrade
from decision_store.records import decode_decision
from decision_store.schema import metadata
from decision_store.store import DecisionStore
from tests.fixtures.store import STORE_KINDS, decision_doc


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_migrate_status_and_purge_commands(
    make_store_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    url = make_store_url("sqlite")
    monkeypatch.setenv("CREDIT_SCORER_STORE__URL", url)
    runner = CliRunner()
    migrated = runner.invoke(app, ["store", "migrate"])
    assert migrated.exit_code == 0 and "revision 0001" in migrated.output
    now = datetime.now(UTC)
    docs = [
        decision_doc("new", 1),
        decision_doc("old", 1, decided_at=(now - timedelta(days=800)).isoformat()),
    ]
    store = DecisionStore.from_url(url)
    store.upsert([r for d in docs if (r := decode_decision(orjson.dumps(d), now)) is not None])
    status = runner.invoke(app, ["store", "status"])
    assert status.exit_code == 0 and "records=2" in status.output
    purged = runner.invoke(app, ["store", "purge"])  # 25 months by default: 800 days is older
    assert purged.exit_code == 0 and "purged 1 records" in purged.output
    assert [r["application_id"] for r in store.by_client(1, 10, 0).items] == ["new"]
    store.close()
    bad = runner.invoke(app, ["store", "purge", "--months", "0"])
    assert bad.exit_code == 2 and "--months must be at least 1" in bad.output


def test_an_unreachable_database_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("CREDIT_SCORER_STORE__URL", "postgresql+psycopg://u@127.0.0.1:1/x")
    result = CliRunner().invoke(app, ["store", "status"])
    assert result.exit_code == 1 and result.output.startswith("error: store unreachable")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_migration_builds_exactly_the_table_the_code_writes(
    kind: str, make_store_url: Callable[[str], str]
) -> None:
    store = DecisionStore.from_url(make_store_url(kind))
    try:
        upgrade(store.engine)
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        store.close()
