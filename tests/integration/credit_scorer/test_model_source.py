"""Serving from a real MLflow registry (sqlite store): by alias, by version, refusals, the `model` CLI,
and the alias watch that hands a new version over without a restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from credit_scorer.challenger_watch import ChallengerWatcher, load_challenger
from credit_scorer.cli import app
from credit_scorer.metrics import ScorerMetrics
from credit_scorer.model_source import load_served_model, open_registry
from credit_scorer.model_watch import ModelWatcher
from credit_scorer.settings import Settings, get_settings
from devtools.harness import settings_env
from scoring.exceptions import SchemaMismatchError
from scoring.model import MODEL_FILE, load_model
from scoring.prepared import PreparedModel
from tests.fixtures.models import default_schema, synthetic_matrix
from tests.fixtures.registry import MakeRegistrySettings, RegistryTemplate
from tests.polling import wait_until
from training.exceptions import RegistryError

pytestmark = pytest.mark.integration


def settings_policy_version(settings: Settings) -> str:
    from scoring.policy_file import load_policy

    return load_policy(settings.policy.path).version


def card_version(model_dir: Path) -> str:
    return load_model(model_dir).model_version


def test_serves_the_alias_or_a_pinned_version_verified(
    make_registry_settings: MakeRegistrySettings, registry_template: RegistryTemplate
) -> None:
    settings = make_registry_settings()
    with pytest.raises(RegistryError, match="alias 'champion'"):  # nothing promoted yet
        load_served_model(settings)
    open_registry(settings).set_alias("champion", "2")

    served = load_served_model(settings)
    assert served.registry_version == "2"
    assert served.loaded.model_version == card_version(registry_template.model_dirs["2"])
    x, _ = synthetic_matrix(default_schema(), 200, seed=3)
    expected = load_model(registry_template.model_dirs["2"]).predict(x)
    assert np.array_equal(served.loaded.predict(x), expected)

    pinned = load_served_model(
        settings.model_copy(update={"model": settings.model.model_copy(update={"registry_version": "1"})})
    )
    assert pinned.registry_version == "1"
    assert pinned.loaded.model_version == card_version(registry_template.model_dirs["1"])


def test_a_tampered_artifact_is_refused_naming_the_sha256(
    make_registry_settings: MakeRegistrySettings, registry_template: RegistryTemplate, tmp_path: Path
) -> None:
    settings = make_registry_settings()
    registry = open_registry(settings)
    tampered = tmp_path / "tampered"
    shutil.copytree(registry_template.model_dirs["1"], tampered)
    with (tampered / MODEL_FILE).open("a") as fh:
        fh.write("\n")  # the artifact store altered after registration
    mv = registry.client.create_model_version(registry.name, source=tampered.as_uri())
    registry.set_alias("champion", str(mv.version))
    with pytest.raises(RegistryError, match=r"version 4: downloaded model refused: .*sha256"):
        load_served_model(settings)


def test_a_model_of_another_feature_schema_is_refused(
    make_registry_settings: MakeRegistrySettings, registry_template: RegistryTemplate
) -> None:
    settings = make_registry_settings(registry_version="3")
    live = load_model(registry_template.model_dirs["1"]).feature_version
    assert load_served_model(settings).loaded.feature_version != live  # loadable on its own
    with pytest.raises(SchemaMismatchError, match=f"the live cache serves {live}: load and switch"):
        load_served_model(settings, expected_feature_version=live)


def _cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["model", *args], env=settings_env(settings))
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.stdout, result.stderr


def test_model_cli_lists_promotes_and_demotes(make_registry_settings: MakeRegistrySettings) -> None:
    settings = make_registry_settings()
    assert _cli(settings, "promote", "2")[0] == 0
    code, out, _ = _cli(settings, "promote", "1", "--alias", "challenger")
    assert code == 0 and "challenger -> version 1" in out
    code, out, _ = _cli(settings, "list")
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("3", "-"), ("2", "champion"), ("1", "challenger")]
    code, out, _ = _cli(settings, "demote", "--alias", "challenger")
    assert code == 0 and "was version 1" in out
    assert open_registry(settings).versions()[2].aliases == ()

    code, _, err = _cli(settings, "promote", "9")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "version 9" in err, err
    code, _, err = _cli(settings, "demote", "--alias", "nobody")
    assert code == 2 and err.startswith("error: ") and "'nobody'" in err, err


async def test_the_watch_prepares_a_promoted_version_and_refuses_another_schema(
    make_registry_settings: MakeRegistrySettings, registry_template: RegistryTemplate
) -> None:
    settings = make_registry_settings(watch_interval_s=0.05)
    registry = open_registry(settings)
    registry.set_alias("champion", "1")
    live = load_model(registry_template.model_dirs["1"]).feature_version
    metrics = ScorerMetrics()
    watcher = ModelWatcher(settings, "1", live, metrics)
    handed: list[tuple[PreparedModel, str]] = []
    assert watcher.poll_once(lambda m, v: handed.append((m, v))) == "unchanged"

    registry.set_alias("champion", "3")  # another feature schema: not served, not retried
    assert watcher.poll_once(lambda m, v: handed.append((m, v))) == "schema_mismatch"
    assert watcher.poll_once(lambda m, v: handed.append((m, v))) == "unchanged"
    assert handed == [] and watcher.current_version == "1"

    registry.set_alias("champion", "2")
    watcher.start(lambda m, v: handed.append((m, v)))  # the real thread this time
    try:
        await wait_until(lambda: bool(handed), 60, "the watch to hand version 2 over")
    finally:
        watcher.stop()
    model, version = handed[0]
    assert version == "2" and model.model_version == card_version(registry_template.model_dirs["2"])
    assert model.forest is not None  # prepared off the hot path, compiled forest included
    swaps = metrics.model_swaps
    assert swaps.labels("swapped")._value.get() == 1
    assert swaps.labels("schema_mismatch")._value.get() == 1


def test_the_challenger_alias_is_served_moved_refused_and_removed_without_a_restart(
    make_registry_settings: MakeRegistrySettings, registry_template: RegistryTemplate
) -> None:
    settings = make_registry_settings(watch_interval_s=0.05)
    registry = open_registry(settings)
    registry.set_alias("champion", "1")
    live = load_model(registry_template.model_dirs["1"]).feature_version
    metrics = ScorerMetrics()
    assert load_challenger(settings, live, metrics) == (None, "")  # no alias: no challenger, no error

    registry.set_alias("challenger", "2")
    model, version = load_challenger(settings, live, metrics)
    assert version == "2" and model is not None
    assert model.model_version == card_version(registry_template.model_dirs["2"])
    assert model.policy_spec.version == settings_policy_version(settings)  # the process's policy file

    watcher = ChallengerWatcher(settings, version, live, metrics)
    handed: list[tuple[PreparedModel | None, str]] = []
    on_ready = lambda m, v: handed.append((m, v))  # noqa: E731
    assert watcher.poll_once(on_ready) == "unchanged"
    registry.set_alias("challenger", "3")  # another feature schema: not served, not retried
    assert watcher.poll_once(on_ready) == "schema_mismatch"
    assert watcher.poll_once(on_ready) == "unchanged" and handed == []
    registry.set_alias("challenger", "1")  # the champion's own version may be a challenger too
    assert watcher.poll_once(on_ready) == "served" and handed[-1][1] == "1"
    registry.delete_alias("challenger")  # demoted: no challenger from now on
    assert watcher.poll_once(on_ready) == "removed" and handed[-1] == (None, "")
    assert watcher.poll_once(on_ready) == "unchanged" and len(handed) == 2
    assert watcher.alias == "challenger" and registry.alias_version("champion") == "1"  # untouched
    swaps = metrics.challenger_swaps
    assert [swaps.labels(r)._value.get() for r in ("served", "schema_mismatch", "removed")] == [2, 1, 1]
    assert metrics.model_swaps.labels("schema_mismatch")._value.get() == 0  # the champion's own count

    # at start, a challenger of another schema is refused and the worker starts without one
    registry.set_alias("challenger", "3")
    assert load_challenger(settings, live, metrics) == (None, "")
    assert swaps.labels("schema_mismatch")._value.get() == 2
