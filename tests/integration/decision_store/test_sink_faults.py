"""The sink through a database outage (real PostgreSQL refusing every connection for a while), an
undecodable record and a decision the database refuses: it retries, never crashes nor blocks, and ends
with every valid decision stored once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from credit_scorer.metrics import StoreMetrics
from decision_store.sink import StoreSink
from decision_store.store import DecisionStore
from devtools.harness import KafkaTopics, produce_payloads, settings_for
from tests.fixtures.postgres import plain_url
from tests.fixtures.store import decision_doc

pytestmark = pytest.mark.integration


def set_connections(url: str, allowed: bool) -> None:
    """ALLOW_CONNECTIONS on the test's own database; when refusing, end its open sessions too."""
    name = make_url(url).database
    admin = plain_url(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allowed else "false")))  # fmt: skip
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


async def stored(store: DecisionStore) -> int:
    try:
        return await asyncio.to_thread(store.count)
    except Exception:
        return -1


async def test_the_sink_waits_out_a_database_outage_and_skips_bad_records(
    kafka_bootstrap: str,
    make_topics: Callable[..., KafkaTopics],
    make_store_url: Callable[[str], str],
) -> None:
    topics = make_topics(2)
    url = make_store_url("postgres")
    base = settings_for(kafka_bootstrap, topics)
    cfg = base.store.model_copy(update={"url": url, "consumer_group": f"s-{topics.group}", "batch_max": 50})
    settings = base.model_copy(update={"store": cfg})
    metrics = StoreMetrics()
    stopping = asyncio.Event()
    sink = asyncio.create_task(StoreSink(settings, metrics, stopping).run())
    store = DecisionStore.from_url(url)
    first = [(f"a{i}".encode(), orjson.dumps(decision_doc(f"a{i}", i))) for i in range(200)]
    second = [(f"b{i}".encode(), orjson.dumps(decision_doc(f"b{i}", i))) for i in range(200)]
    # valid JSON, but PostgreSQL keeps no NUL character: the database refuses this one decision
    nul = decision_doc("nul", 1, reasons=[{"feature": "F\u0000", "value": 1, "contribution": 0.1}])
    second.insert(100, (b"nul", orjson.dumps(nul)))
    try:
        await produce_payloads(kafka_bootstrap, topics.decisions, [*first, (b"x", b"\xff not json")])
        deadline = time.monotonic() + 60
        while await stored(store) < 200:
            assert time.monotonic() < deadline and not sink.done(), "the first 200 were not stored"
            await asyncio.sleep(0.05)
        set_connections(url, allowed=False)
        await produce_payloads(kafka_bootstrap, topics.decisions, second)
        deadline = time.monotonic() + 30
        while metrics.retries.labels("database")._value.get() < 2:
            assert time.monotonic() < deadline, "the sink did not retry the database"
            await asyncio.sleep(0.05)
        assert not sink.done()  # retrying, not crashed
        set_connections(url, allowed=True)
        deadline = time.monotonic() + 60
        while await stored(store) < 400:
            assert time.monotonic() < deadline and not sink.done(), "not all stored after the outage"
            await asyncio.sleep(0.05)
    finally:
        set_connections(url, allowed=True)
        stopping.set()
        await asyncio.wait_for(sink, 30)
        store.close()
    assert metrics.stored.labels("rejected")._value.get() == 2  # the garbage and the NUL
    assert metrics.stored.labels("stored")._value.get() == 400
