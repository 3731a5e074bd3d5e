"""A steady stream on the embedded stack: about a minute at 2,000 applications/s, every one decided.

The worker runs with its default fetch settings (a 5 ms long-poll) against its own Tansu broker, which
this test fills and then stops (Tansu's memory log slows every later fetch of the session broker).
Before the fetch guard (:mod:`stream_app.fetch_guard`), the worker stopped deciding after some tens of
thousands of events: Tansu answers a 5 ms fetch with nothing once its log is large, and the consumer
spun on empty fetches with its lag growing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.harness import WorkerProcess, application_payloads, collect, produce_payloads, sample_total
from devtools.launchers import TansuBroker, free_port
from tests.fixtures.kafka import StreamEnv
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RATE = 2000.0
SECONDS = 60


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_a_minute_at_2000_per_second_is_decided_completely(
    make_stream_env: Callable[..., StreamEnv], tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a sustained-rate test: its worker runs without coverage's tracer (under `make test` the tracer slowed
    # the faust engine below the rate under test on a loaded machine; the other e2e tests measure the code)
    monkeypatch.delenv("COVERAGE_PROCESS_CONFIG", raising=False)
    broker = TansuBroker(log_path=tmp_path / "tansu.log").start()
    try:
        env = make_stream_env(partitions=4, bootstrap_servers=broker.bootstrap_servers)
        stream = env.settings.stream.model_copy(update={"metrics_port": free_port()})
        settings = env.settings.model_copy(update={"stream": stream})
        assert settings.stream.fetch_max_wait_ms == 5  # the default under test
        n = int(RATE * SECONDS)
        rows = [i % len(env.ids) for i in range(n)]
        payloads = application_payloads(env.model.schema, env.ids, env.matrix, rows, id_prefix="soak")
        kafka = settings.kafka
        log = tmp_path / "worker.log"
        worker = WorkerProcess(settings, engine, log).start()
        try:
            # up = its metrics page serves the model (a loaded machine can take a while to start it)
            await wait_until(lambda: "credit_scorer_model_info{" in worker.metrics_text(), 180, "worker up")
            started = time.monotonic()
            await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, payloads, rate=RATE)
            produced_s = time.monotonic() - started
            decided = lambda: sample_total(worker.metrics_text(), "credit_scorer_decisions_total")  # noqa: E731
            try:
                await wait_until(lambda: decided() >= n, 90, f"{n:,} decisions", interval_s=0.5)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {decided():,.0f} decided\n{_tail(log)}") from None
            keys = {k for k, _ in payloads}
            records = await collect(kafka.bootstrap_servers, kafka.decisions_topic, keys=keys, timeout_s=120)
            decided_keys = {r.key for r in records}
            assert decided_keys == keys, f"{len(keys - decided_keys):,} undecided after {produced_s:.0f}s"
            page = worker.metrics_text()
            assert sample_total(page, "credit_scorer_dead_letters_total") == 0
            assert worker.terminate(timeout_s=30) == 0, _tail(log)
        finally:
            worker.kill()
    finally:
        await asyncio.to_thread(broker.stop)
