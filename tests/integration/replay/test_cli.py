"""`credit-scorer replay run` as a subprocess: Ctrl-C writes the checkpoint, --resume finishes the report."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.harness import settings_env
from replay.report import REPORT_FILE, SUMMARY_FILE
from tests.integration.replay.conftest import History

pytestmark = pytest.mark.integration


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from credit_scorer.cli import main; main()", "replay", *args]


def env_of(history: History, policy: Path | None = None) -> dict[str, str]:
    env = {**os.environ, **settings_env(history.settings)}
    if policy is not None:
        env["CREDIT_SCORER_POLICY__PATH"] = str(policy)
    return env


def threshold_only_policy(folder: Path) -> Path:
    """The live history was decided by the model's threshold alone: replay with that same policy."""
    path = folder / "policy.yaml"
    path.write_text("version: threshold-only\n", encoding="utf-8")
    return path


@pytest.mark.slow  # ~20 s: three CLI processes and a one-record-per-batch replay
async def test_ctrl_c_checkpoints_and_resume_completes_the_report(
    make_history: Callable[..., Any],
    tmp_path: Path,
) -> None:
    history: History = await make_history(600)
    policy = threshold_only_policy(tmp_path)
    out = tmp_path / "replay"
    model_dir = str(history.env.model.model.path)
    args = ["run", "--model", model_dir, "--out", str(out), "--batch-size", "1", "--checkpoint-every", "0"]
    proc = subprocess.Popen(
        cli(*args, "--no-progress"),
        env=env_of(history, policy),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "checkpoint.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 60s"
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert b"re-run with --resume" in stderr and b"Traceback" not in stderr
    checkpoint = orjson.loads((out / "checkpoint.json").read_bytes())
    done = sum(checkpoint["next_offsets"].values())
    assert not checkpoint["complete"] and 0 < done < 600

    again = subprocess.run(cli(*args), env=env_of(history, policy), capture_output=True, timeout=60)
    assert again.returncode == 2 and b"--resume" in again.stderr and len(again.stderr.splitlines()) == 1

    faster = [a if a != "1" else "200" for a in args]  # the batch size is not part of the checkpoint
    # with the progress bar this time (rich, without a terminal)
    resumed = subprocess.run(
        cli(*faster, "--resume"), env=env_of(history, policy), capture_output=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert b"replayed 600 applications" in resumed.stdout
    summary = orjson.loads((out / SUMMARY_FILE).read_bytes())
    assert summary["rescored"] == summary["joined"] == 600
    assert summary["overall"]["accord_to_refus"] == summary["overall"]["refus_to_accord"] == 0
    assert (out / REPORT_FILE).is_file()


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from replay.cli import app

    cases = [
        (["run", "--out", str(tmp_path / "o")], "exactly one of --model DIR or --model-version"),
        (
            ["run", "--model", str(tmp_path / "absent"), "--out", str(tmp_path / "o")],
            "model directory not found",
        ),
        (["run", "--model", str(tmp_path), "--reasons", "why"], "--reasons 'why'"),
        (["run", "--model", str(tmp_path), "--labels", str(tmp_path / "l.csv")], "--labels"),
        (["report", "--out", str(tmp_path)], "no replay checkpoint"),
    ]
    for args, message in cases:
        done = CliRunner().invoke(app, args)
        assert done.exit_code in (1, 2), (args, done.output)
        lines = done.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.slow  # MLflow's sqlite schema takes ~10-15 s to create
def test_model_version_is_fetched_from_the_registry(
    make_model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    from credit_scorer.settings import Settings
    from replay.models import ModelChoice, load_choice
    from training.registry import MlflowTarget, register_model_dir

    settings = Settings()
    settings = settings.model_copy(
        update={"paths": settings.paths.model_copy(update={"data_dir": tmp_path / "var"})}
    )
    m = settings.mlflow
    target = MlflowTarget.from_settings(tmp_path / "var", None, m.experiment_name, m.registered_model_name)
    model_dir = make_model_dir(seed=2, n_trees=10)
    registration = register_model_dir(model_dir, target)

    fetched = load_choice(settings, ModelChoice("model", version=registration.version))
    loaded = fetched.loaded
    assert fetched.registry_version == registration.version
    assert (
        loaded.card.model_sha256
        == load_choice(settings, ModelChoice("model", model_dir)).loaded.card.model_sha256
    )
    assert loaded.path.is_relative_to(tmp_path / "var" / "registry-models")
    latest = load_choice(settings, ModelChoice("model", version="latest"))
    assert latest.registry_version == registration.version  # the number itself, named in the report
