"""A real worker serving the registry's ``champion`` moves to a newly promoted version mid-stream."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from credit_scorer.model_source import open_registry
from devtools.harness import WorkerProcess, application_payloads, collect, produce_payloads, sample_total
from devtools.launchers import free_port
from schemas.codec import decode_decision
from scoring.model import load_model
from scoring.prepared import PreparedModel
from tests.fixtures.kafka import StreamEnv
from tests.fixtures.registry import MakeRegistrySettings, RegistryTemplate
from tests.polling import wait_until

pytestmark = pytest.mark.e2e


def log_tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


async def test_promotion_mid_stream_switches_once_and_decides_each_application_once(
    make_stream_env: Callable[..., StreamEnv],
    make_registry_settings: MakeRegistrySettings,
    registry_template: RegistryTemplate,
    tmp_path: Path,
) -> None:
    env = make_stream_env(partitions=2)
    stream = env.settings.stream.model_copy(update={"metrics_port": free_port()})
    settings = make_registry_settings(
        env.settings.model_copy(update={"stream": stream}), watch_interval_s=0.2
    )
    registry = open_registry(settings)
    registry.set_alias("champion", "1")
    old = env.model  # version 1 is the stream env's model
    new = PreparedModel(load_model(registry_template.model_dirs["2"]))
    assert old.model_version != new.model_version

    n = 6000  # at most: production stops 500 applications after the swap is seen
    payloads = application_payloads(
        env.model.schema, env.ids, env.matrix, [i % 2000 for i in range(n)], id_prefix="swap"
    )
    kafka = settings.kafka
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, "batch", log).start()
    sent, promoted, swapped_at = 0, False, None
    try:
        await wait_until(lambda: "credit_scorer_model_info{" in worker.metrics_text(), 180, "worker up")
        while sent < n and (swapped_at is None or sent < swapped_at + 500):
            chunk = payloads[sent : sent + 100]
            await produce_payloads(kafka.bootstrap_servers, kafka.applications_topic, chunk, rate=400)
            sent += len(chunk)
            page = worker.metrics_text()
            if not promoted and sample_total(page, "credit_scorer_decisions_total") >= 300:
                registry.set_alias("champion", "2")  # mid-stream: the producer does not pause
                promoted = True
            if swapped_at is None and 'credit_scorer_model_swaps_total{result="swapped"} 1.0' in page:
                swapped_at = sent
        assert swapped_at is not None, f"no swap after {sent} applications: {log_tail(log)}"
        payloads = payloads[:sent]
        records = await collect(
            kafka.bootstrap_servers, kafka.decisions_topic, keys={k for k, _ in payloads}, timeout_s=120
        )
        assert worker.terminate(30) == 0
    finally:
        worker.kill()

    tail = log_tail(log)
    counts = Counter(r.key for r in records)
    assert set(counts) == {k for k, _ in payloads} and max(counts.values()) == 1, tail  # exactly once
    models = {old.model_version: old, new.model_version: new}
    row = {k: i % 2000 for i, (k, _) in enumerate(payloads)}  # the matrix row each payload was made of
    by_version: Counter[str] = Counter()
    for partition in {r.partition for r in records}:
        seen_new = False
        for r in sorted((r for r in records if r.partition == partition), key=lambda r: r.offset):
            d = decode_decision(r.value)
            by_version[d.model_version] += 1
            model = models[d.model_version]  # stamped by one of the two, and made by that one
            i = row[r.key]  # type: ignore[index]
            expected = model.calibrator.apply(model.booster.predict(env.matrix[i : i + 1]))[0]
            assert d.probability_default == pytest.approx(expected, abs=1e-12)
            assert not (seen_new and d.model_version == old.model_version), "back to the old model"
            seen_new = seen_new or d.model_version == new.model_version
    assert by_version[old.model_version] >= 300 and by_version[new.model_version] > 0, by_version
