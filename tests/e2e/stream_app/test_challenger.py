"""A real worker serving the registry's ``champion`` scores its ``challenger`` in the shadow: one decision
and one shadow decision per application, each stamped by its model; demoting the challenger stops the
shadow without a restart."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from credit_scorer.model_source import open_registry
from devtools.harness import (
    ConsumedRecord,
    WorkerProcess,
    application_payloads,
    collect,
    create_topics,
    produce_payloads,
)
from devtools.launchers import free_port
from schemas.codec import decode_decision
from scoring.model import load_model
from scoring.prepared import PreparedModel
from tests.fixtures.kafka import StreamEnv
from tests.fixtures.models import synthetic_amounts_policy
from tests.fixtures.registry import MakeRegistrySettings, RegistryTemplate
from tests.polling import wait_until

pytestmark = pytest.mark.e2e

N_SHADOWED = 800
N_AFTER = 300


def samples(page: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample ``name`` of a /metrics page, by its sorted labels."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def total(page: str, name: str, **match: str) -> float:
    return sum(v for labels, v in samples(page, name).items() if set(match.items()) <= set(labels))


def log_tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


async def test_challenger_decides_every_application_once_in_the_shadow_until_demoted(
    make_stream_env: Callable[..., StreamEnv],
    make_registry_settings: MakeRegistrySettings,
    registry_template: RegistryTemplate,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = make_stream_env(partitions=2)
    shadow_topic = f"shadow-{uuid.uuid4().hex[:10]}"
    await create_topics(env.settings.kafka.bootstrap_servers, [shadow_topic], 2)
    base = env.settings.model_copy(
        update={
            "stream": env.settings.stream.model_copy(update={"metrics_port": free_port()}),
            "kafka": env.settings.kafka.model_copy(update={"shadow_topic": shadow_topic}),
        }
    )
    settings = make_registry_settings(base, watch_interval_s=0.2)
    # the policy with the credit/goods cap fitted to the synthetic rows: ACCORD, REFUS and REFER all occur
    policy = synthetic_amounts_policy(tmp_path / "policy.yaml")
    monkeypatch.setenv("CREDIT_SCORER_POLICY__PATH", str(policy))  # the worker inherits it
    registry = open_registry(settings)
    registry.set_alias("champion", "1")
    registry.set_alias("challenger", "2")
    champion = env.model  # version 1 is the stream env's model
    challenger = PreparedModel(load_model(registry_template.model_dirs["2"]))
    assert champion.model_version != challenger.model_version

    rows = [i % 2000 for i in range(N_SHADOWED + N_AFTER)]
    payloads = application_payloads(champion.schema, env.ids, env.matrix, rows, id_prefix="cc")
    shadowed, after = payloads[:N_SHADOWED], payloads[N_SHADOWED:]
    row = {k: r for (k, _), r in zip(payloads, rows, strict=True)}
    kafka = settings.kafka
    bs = kafka.bootstrap_servers
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, "batch", log).start()
    try:
        await wait_until(
            lambda: challenger.model_version in worker.metrics_text(),
            180,
            f"worker up with a challenger: {log}",
        )
        await produce_payloads(bs, kafka.applications_topic, shadowed)
        keys = {k for k, _ in shadowed}
        decisions = await collect(bs, kafka.decisions_topic, keys=keys, timeout_s=120)
        shadow = await collect(bs, shadow_topic, keys=keys, timeout_s=60)
        page = worker.metrics_text()

        registry.delete_alias("challenger")  # demoted: picked up at the next poll, no restart
        await wait_until(
            lambda: (
                total(worker.metrics_text(), "credit_scorer_challenger_swaps_total", result="removed") >= 1
            ),
            30,
            "the demotion to be seen",
        )
        await produce_payloads(bs, kafka.applications_topic, after)
        decided_after = await collect(bs, kafka.decisions_topic, keys={k for k, _ in after}, timeout_s=120)
        assert worker.terminate(30) == 0, log_tail(log)
    finally:
        worker.kill()
    tail = log_tail(log)

    def stamped(
        records: list[ConsumedRecord], model: PreparedModel, wanted: set[bytes | None]
    ) -> Counter[str]:
        """Each wanted key exactly once, decided by ``model`` on its own matrix row; outcome counts."""
        mine = [r for r in records if r.key in wanted]
        counts = Counter(r.key for r in mine)
        assert set(counts) == wanted and max(counts.values()) == 1, tail
        outcomes: Counter[str] = Counter()
        for r in mine:
            d = decode_decision(r.value)
            assert d.model_version == model.model_version and d.application_id.encode() == r.key
            i = row[r.key]
            expected = model.calibrator.apply(model.booster.predict(env.matrix[i : i + 1]))[0]
            assert d.probability_default == pytest.approx(expected, abs=1e-12)
            outcomes[str(d.decision)] += 1
        return outcomes

    champion_outcomes = stamped(decisions, champion, keys)
    challenger_outcomes = stamped(shadow, challenger, keys)
    assert challenger_outcomes["REFER"] > 0, challenger_outcomes  # shadow REFERs exist that could leak
    # after the demotion: decided by the champion, nothing more on the shadow topic
    stamped(decided_after, champion, {k for k, _ in after})
    shadow_end = await collect(bs, shadow_topic, to_end=True, timeout_s=30)
    assert {r.key for r in shadow_end} == keys, "shadow decisions after the demotion"
    # the review topic holds the champion's REFERs, and none of the shadow's
    referred = {r.key for r in [*decisions, *decided_after] if decode_decision(r.value).decision == "REFER"}
    reviews = await collect(bs, kafka.review_topic, to_end=True, timeout_s=30)
    assert sorted(r.key or b"" for r in reviews) == sorted(k or b"" for k in referred)
    assert {decode_decision(r.value).model_version for r in reviews} == {champion.model_version}
    # metrics of the shadowed applications: both roles by version, the agreement pairs
    for role, model, outcomes in (
        ("champion", champion, champion_outcomes),
        ("challenger", challenger, challenger_outcomes),
    ):
        for decision, n in outcomes.items():
            got = total(page, "credit_scorer_decisions_total", decision=decision, role=role)
            assert (
                got == n
                and total(page, "credit_scorer_decisions_total", model_version=model.model_version)
                == N_SHADOWED
            )
        assert total(page, "credit_scorer_default_probability_count", role=role) == N_SHADOWED
    pairs = samples(page, "credit_scorer_challenger_decisions_total")
    assert len(pairs) == 9 and sum(pairs.values()) == N_SHADOWED
    assert (
        0
        < sum(v for labels, v in pairs.items() if dict(labels)["champion"] == dict(labels)["challenger"])
        < N_SHADOWED
    )
