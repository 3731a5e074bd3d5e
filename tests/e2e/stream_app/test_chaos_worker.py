"""Chaos: a worker SIGKILLed again and again (and restarted) during a run loses nothing.

A second, stable worker shares the partitions, so every kill and restart also rebalances a live
worker in the middle of its batches (the path where Faust's stock consumer lost records). Every
application gets a decision; the only duplicates are uncommitted tails (at most one micro-batch per
kill for the batch engine) and they are identical except for timing fields.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from credit_scorer.settings import Settings
from devtools.harness import WorkerProcess, application_payloads, collect, produce_payloads, sample_total
from devtools.launchers import free_port
from tests.fixtures.kafka import StreamEnv
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# engine → (events, kills); events are offered at RATE/s so production spans every kill/restart cycle
PLAN = {"batch": (20_000, 5), "faust": (8_000, 3)}
RATE = 400
COLLECT_S = 240  # a real deadline for the last decisions (not an idle gap: see harness.collect)
TIMING_FIELDS = ("latency", "consumed_at", "decided_at", "features_age_s")


def with_port(settings: Settings) -> Settings:
    """A fresh metrics port per process (a reused port could be taken by another process meanwhile)."""
    return settings.model_copy(
        update={"stream": settings.stream.model_copy(update={"metrics_port": free_port()})}
    )


def decided(worker: WorkerProcess) -> float:
    return sample_total(worker.metrics_text(), "credit_scorer_decisions_total")


def without_timing(raw: bytes) -> dict[str, Any]:
    doc = orjson.loads(raw)
    for name in TIMING_FIELDS:
        doc.pop(name, None)
    return doc


def tail_bound(settings: Settings, engine: str) -> int:
    """Most records one kill can leave published but uncommitted (so redelivered)."""
    if engine == "batch":
        return settings.stream.batch_max  # offsets committed after every micro-batch
    # Faust commits acked offsets every 0.5 s (broker_commit_interval); each kill also rebalances the
    # stable worker twice, and Faust redelivers its uncommitted events then too
    return 3 * (settings.stream.batch_max + 2_500)


@pytest.mark.timeout(420)
@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_repeated_sigkill_loses_no_application(
    make_stream_env: Callable[..., StreamEnv], tmp_path: Path, engine: str
) -> None:
    n_events, n_kills = PLAN[engine]
    env = make_stream_env(partitions=4)
    settings = env.settings
    kafka = settings.kafka
    rows = [i % len(env.ids) for i in range(n_events)]
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, rows, id_prefix="chaos")
    keys = {k for k, _ in payloads}
    rng = random.Random(4)
    stable = WorkerProcess(with_port(settings), engine, tmp_path / "stable.log").start()
    producing = asyncio.ensure_future(
        produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads, rate=RATE)
    )
    kills = 0
    victim: WorkerProcess | None = None
    try:
        while kills < n_kills:
            victim = WorkerProcess(with_port(settings), engine, tmp_path / f"victim-{kills}.log").start()
            await wait_until(
                lambda w=victim: decided(w) > 0 or producing.done(), 120, f"victim {kills} deciding"
            )
            await asyncio.sleep(rng.uniform(0.05, 1.0))
            victim.kill()
            kills += 1
        await producing
        # every application decided (or the deadline: a rebalance pause is waited for, however long)
        await collect(kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, timeout_s=COLLECT_S)
        final = stable.metrics_text()
        assert stable.terminate(30) == 0
        # no writer left: the whole topic, every duplicate included
        records = await collect(kafka.bootstrap_servers, kafka.decisions_topic, to_end=True, timeout_s=60)
    finally:
        producing.cancel()
        stable.kill()
        if victim is not None:
            victim.kill()

    counts = Counter(r.key for r in records)
    assert set(counts) == keys, f"{len(keys - set(counts))} applications without a decision"
    duplicates = sum(c - 1 for c in counts.values())
    bound = tail_bound(settings, engine)
    assert duplicates <= kills * bound, f"{duplicates} duplicates for {kills} kills of ≤{bound}"
    first: dict[bytes | None, dict[str, Any]] = {}
    for r in records:
        doc = without_timing(r.value)
        if r.key in first:
            assert doc == first[r.key], f"duplicate decision for {r.key!r} differs"
        else:
            first[r.key] = doc
    assert sample_total(final, "credit_scorer_dead_letters_total") == 0
    print(
        f"chaos[{engine}]: {kills} SIGKILLs, {len(records)} decisions for {n_events} applications, "
        f"{duplicates} duplicates"
    )
