"""`replay run --model-version N --against-version M` against a real MLflow registry (sqlite store), a
real Tansu topic and a real redis-server: both versions decide the same history, the report names both,
and the differences are those of a direct `decide` on the same rows; refusals before any replay."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from credit_scorer.model_source import open_registry
from credit_scorer.settings import Settings, get_settings
from devtools.harness import application_payloads, settings_env
from replay.report import REPORT_FILE, SUMMARY_FILE, build_report
from replay.runner import Replayer, ReplayOptions
from schemas.codec import parse_application
from scoring.decide import DecideOptions, decide
from scoring.fairness import fairness_report
from scoring.features import CachedFeatures
from scoring.model import MODEL_FILE, load_model
from scoring.prepared import PreparedModel
from tests.fixtures.registry import MakeRegistrySettings, RegistryTemplate
from tests.integration.replay.conftest import History

pytestmark = pytest.mark.integration


def replay_cli(settings: Settings, out: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    policy = out.parent / "threshold-only.yaml"  # the fixture history's rows are decided by the threshold
    policy.write_text("version: threshold-only\n", encoding="utf-8")
    env = {**os.environ, **settings_env(settings), "CREDIT_SCORER_POLICY__PATH": str(policy)}
    cmd = [sys.executable, "-c", "from credit_scorer.cli import main; main()", "replay", "run"]
    cmd += ["--out", str(out), "--no-progress", "--no-plots", "--no-publish", *args]
    return subprocess.run(cmd, env=env, capture_output=True, timeout=180)


def register_folder(settings: Settings, folder: Path) -> str:
    """A new registry version whose artifact is ``folder`` (as an artifact store would serve it)."""
    registry = open_registry(settings)
    return str(registry.client.create_model_version(registry.name, source=folder.as_uri()).version)


def direct(model_dir: Path, history: History) -> Any:
    """The history's applications decided by ``decide`` on their feature-table rows (what the cache holds)."""
    env = history.env
    payloads = application_payloads(env.model.schema, env.ids, env.matrix, history.rows, id_prefix="app")
    apps = [parse_application(v, 1 << 16) for _, v in payloads]
    n = len(apps)
    cached = CachedFeatures(env.matrix[history.rows], np.ones(n, dtype=bool), env.model.feature_version, None)
    return decide(PreparedModel(load_model(model_dir)), apps, cached, options=DecideOptions("none"))


async def test_the_same_model_registered_twice_changes_nothing(
    make_history: Callable[..., Any],
    make_registry_settings: MakeRegistrySettings,
    registry_template: RegistryTemplate,
    tmp_path: Path,
) -> None:
    history: History = await make_history(300)
    settings = make_registry_settings(history.settings)
    again = register_folder(settings, registry_template.model_dirs["1"])
    assert again == "4"
    out = tmp_path / "same"
    done = replay_cli(settings, out, "--model-version", again, "--against-version", "1")
    assert done.returncode == 0, done.stderr.decode()
    summary = orjson.loads((out / SUMMARY_FILE).read_bytes())
    assert summary["rescored"] == summary["joined"] == 300 and summary["unmatched"] == 0
    o = summary["overall"]
    assert o["accord_to_refus"] == o["refus_to_accord"] == 0 and summary["shift"]["max_abs"] == 0.0
    assert summary["fairness"]["old"] == summary["fairness"]["new"]
    version = load_model(registry_template.model_dirs["1"]).model_version
    assert summary["baseline_models"] == {version: 300}  # no live decision was read
    params = summary["params"]
    assert (params["registry_version"], params["against_registry_version"]) == ("4", "1")
    report = (out / REPORT_FILE).read_text()
    assert f"**v4** = model **{version}** (registry version 4)" in report
    assert f"**v1** = model **{version}** (registry version 1)" in report
    assert b"(v1 \xe2\x86\x92 v4)" in done.stdout and b"registry version 4" in done.stdout


async def test_another_version_differs_exactly_as_a_direct_decide_on_the_same_rows(
    make_history: Callable[..., Any],
    make_registry_settings: MakeRegistrySettings,
    registry_template: RegistryTemplate,
    tmp_path: Path,
) -> None:
    history: History = await make_history(300)
    settings = make_registry_settings(history.settings)
    out = tmp_path / "v2-vs-v1"
    done = replay_cli(settings, out, "--model-version", "2", "--against-alias", "champion")
    assert done.returncode == 1 and b"alias 'champion'" in done.stderr  # nothing promoted yet
    assert len(done.stderr.splitlines()) == 1
    open_registry(settings).set_alias("champion", "1")
    done = replay_cli(settings, out, "--model-version", "2", "--against-alias", "champion")
    assert done.returncode == 0, done.stderr.decode()

    old = direct(registry_template.model_dirs["1"], history)
    new = direct(registry_template.model_dirs["2"], history)
    refused_old = np.array([r.decision != "ACCORD" for r in old.results])
    refused_new = np.array([r.decision != "ACCORD" for r in new.results])
    assert (refused_old != refused_new).any(), "precondition: the two versions disagree somewhere"
    summary = orjson.loads((out / SUMMARY_FILE).read_bytes())
    o = summary["overall"]
    assert summary["joined"] == 300
    assert o["accord_to_refus"] == int((~refused_old & refused_new).sum())
    assert o["refus_to_accord"] == int((refused_old & ~refused_new).sum())
    assert o["approval_before"] == pytest.approx(float((~refused_old).mean()), abs=1e-12)
    assert o["approval_after"] == pytest.approx(float((~refused_new).mean()), abs=1e-12)
    p_old = np.array([r.probability for r in old.results])
    p_new = np.array([r.probability for r in new.results])
    assert summary["shift"]["max_abs"] == pytest.approx(float(np.abs(p_new - p_old).max()), abs=1e-12)

    k = Settings().fairness.min_group_decisions
    for side, decided, refused in (("old", old, refused_old), ("new", new, refused_new)):
        p = np.array([r.probability for r in decided.results])
        expected = fairness_report(history.env.model.schema, decided.score.matrix, ~refused, p, k)
        got = summary["fairness"][side]["segments"]
        for family, segment in expected["segments"].items():
            assert got[family]["status"] == segment["status"]
            assert got[family]["disparate_impact"] == pytest.approx(segment["disparate_impact"])
            for group, g in segment["groups"].items():
                assert (
                    got[family]["groups"][group]["decisions"],
                    got[family]["groups"][group]["approvals"],
                ) == (
                    g["decisions"],
                    g["approvals"],
                )
    change = summary["fairness"]["disparate_impact_change"]["gender"]
    old_di = summary["fairness"]["old"]["segments"]["gender"]["disparate_impact"]
    new_di = summary["fairness"]["new"]["segments"]["gender"]["disparate_impact"]
    assert change == (None if old_di is None or new_di is None else pytest.approx(new_di - old_di))
    # the same comparison in one process (no forked workers), through the Replayer API
    replayer = Replayer(
        history.settings,
        PreparedModel(load_model(registry_template.model_dirs["2"])),
        ReplayOptions(out_dir=tmp_path / "in-process", publish=False, workers=1),
        against=PreparedModel(load_model(registry_template.model_dirs["1"])),
    )
    assert (await asyncio.wait_for(replayer.run(), 60)).status == "complete"
    one = build_report(tmp_path / "in-process", plots=False)
    assert asdict(one.overall) == summary["overall"] and one.fairness == summary["fairness"]
    report = (out / REPORT_FILE).read_text()
    assert (
        "## Fairness by segment" in report
        and "| segment | disparate impact v1 | disparate impact v2 |" in report
    )
    assert f"ACCORD → REFUS: **{o['accord_to_refus']}**" in report


def _refused(settings: Settings, *args: str) -> tuple[int, list[str]]:
    from replay.cli import app

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["run", *args], env=settings_env(settings))
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output.strip().splitlines()


def test_versions_of_another_schema_or_a_tampered_artifact_are_refused_in_one_line(
    make_registry_settings: MakeRegistrySettings, registry_template: RegistryTemplate, tmp_path: Path
) -> None:
    settings = make_registry_settings()
    code, lines = _refused(settings, "--model-version", "3", "--against-version", "1", "--out", str(tmp_path))
    narrow, wide = (load_model(registry_template.model_dirs[v]) for v in ("3", "1"))
    assert code == 2 and len(lines) == 1, lines
    for model in (narrow, wide):  # both versions and both schemas named
        assert model.model_version in lines[0] and model.feature_version in lines[0]
    assert "registry version 3" in lines[0] and "registry version 1" in lines[0]
    assert "share the feature schema" in lines[0] and not (tmp_path / "checkpoint.json").exists()

    tampered = tmp_path / "tampered"
    shutil.copytree(registry_template.model_dirs["2"], tampered)
    with (tampered / MODEL_FILE).open("a") as fh:
        fh.write("\n")
    version = register_folder(settings, tampered)
    code, lines = _refused(settings, "--model-version", "1", "--against-version", version)
    assert code == 1 and len(lines) == 1 and f"version {version}" in lines[0] and "sha256" in lines[0], lines
