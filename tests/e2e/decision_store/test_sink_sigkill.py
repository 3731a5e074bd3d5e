"""The store sink SIGKILLed mid-stream and restarted: every decision stored exactly once, none lost.

Real Tansu broker, the real ``credit-scorer store sink`` process, real SQLite and real PostgreSQL. The
topic also carries what the sink must not store or choke on: redelivered copies, replays, garbage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from decision_store.schema import decisions
from decision_store.store import DecisionStore
from devtools.harness import KafkaTopics, StoreSinkProcess, produce_payloads, settings_for
from tests.fixtures.store import STORE_KINDS, decision_doc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 3000


def log_tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


async def wait_for(store: DecisionStore, at_least: int, timeout_s: float, log: Path) -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        try:
            count = await asyncio.to_thread(store.count)
        except Exception:  # the sink has not created the table yet
            count = 0
        if count >= at_least:
            return count
        await asyncio.sleep(0.05)
    pytest.fail(f"{count} of {at_least} decisions stored after {timeout_s}s; sink log:\n{log_tail(log)}")


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_sigkilled_sink_loses_and_duplicates_nothing(
    kind: str,
    kafka_bootstrap: str,
    make_topics: Callable[..., KafkaTopics],
    make_store_url: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topics = make_topics(4)
    base = settings_for(kafka_bootstrap, topics)
    url = make_store_url(kind)
    store_cfg = base.store.model_copy(
        update={"url": url, "consumer_group": f"store-{topics.group}", "batch_max": 100, "metrics_port": 0}
    )
    settings = base.model_copy(update={"store": store_cfg})
    docs = [decision_doc(f"app-{i}", 1000 + i % 97) for i in range(N)]
    records = [(d["application_id"].encode(), orjson.dumps(d)) for d in docs]
    records += records[::10]  # redelivered decisions (as a rescored redelivery would publish)
    records += [(b"bad", b"{not json"), (b"r", orjson.dumps(decision_doc("replayed", 1, is_replay=True)))]
    store = DecisionStore.from_url(url)
    log = tmp_path / "sink.log"
    sink = StoreSinkProcess(settings, log_path=log).start()
    try:
        producing = asyncio.create_task(
            produce_payloads(kafka_bootstrap, topics.decisions, records, rate=1200)
        )
        killed_at = await wait_for(store, 600, 60, log)
        sink.kill()
        assert killed_at < N, "the sink was not killed mid-stream"
        sink = StoreSinkProcess(settings, log_path=log).start()
        await producing
        await wait_for(store, N, 90, log)
        assert sink.terminate() == 0
    finally:
        sink.kill()
    with store.engine.connect() as conn:
        rows = conn.execute(select(decisions.c.application_id, decisions.c.document)).all()
        distinct = conn.execute(select(func.count(func.distinct(decisions.c.application_id)))).scalar_one()
    store.close()
    assert len(rows) == distinct == N, f"{len(rows)} rows, {distinct} distinct, {N} decisions"
    stored = {r.application_id: r.document for r in rows}
    assert stored.keys() == {d["application_id"] for d in docs}
    assert stored["app-1234"] == docs[1234]
