"""`credit-scorer stream demo` end to end, non-interactively (no TTY, CI=true), as a subprocess.

Asserts from the exit code, the output and the --summary-json file: decisions and dead letters came
back for every application sent, the view degraded to plain lines, and every child process (Tansu,
redis-server, worker) is gone with its ports freed — after a normal end and after Ctrl-C (SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-c", "from credit_scorer.cli import main; main()"]


@pytest.fixture(scope="module")
def prepared_data_dir(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """A data dir with the real sample's feature build and a quickly trained model on it."""
    from feature_loader.build import build_features
    from tests.fixtures.models import train_small_model

    data_dir = tmp_path_factory.mktemp("demo-data")
    build_features(sample_dir, data_dir / "features")
    train_small_model(data_dir / "features", data_dir / "models", n_trees=30)
    return data_dir


def demo_env() -> dict[str, str]:
    env = {**os.environ, "CI": "true", "COLUMNS": "200"}
    env.pop("CREDIT_SCORER_KAFKA__BOOTSTRAP_SERVERS", None)
    env.pop("CREDIT_SCORER_REDIS__URL", None)
    return env


class DemoProcess:
    """The demo as a subprocess whose merged output is collected by a reader thread."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "stream", "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=demo_env(),
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in list(self.lines)):
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"demo exited ({self.proc.returncode}) before {text!r}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} within {timeout_s:.0f}s:\n{self.output}")
            time.sleep(0.1)

    def wait(self, timeout_s: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"demo still running after {timeout_s:.0f}s:\n{self.output}")
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def run_demo() -> Iterator[Any]:
    started: list[DemoProcess] = []

    def start(*args: str) -> DemoProcess:
        demo = DemoProcess(list(args))
        started.append(demo)
        return demo

    yield start
    for demo in started:
        demo.kill()


def assert_children_gone(summary: dict[str, Any]) -> None:
    names = {c["name"] for c in summary["children"]}
    assert names == {"tansu", "redis-server", "worker"}, summary["children"]
    for child in summary["children"]:
        assert child["pid"], child
        with pytest.raises(ProcessLookupError):
            os.kill(child["pid"], 0)
        for port in child["ports"]:
            with socket.socket() as sock:  # nothing listens any more: the port can be bound again
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))


def test_demo_streams_decides_and_cleans_up(prepared_data_dir: Path, tmp_path: Path, run_demo: Any) -> None:
    summary_path = tmp_path / "summary.json"
    demo = run_demo(
        "--data-dir", str(prepared_data_dir), "--limit", "300", "--rate", "500", "--bad-every", "50",
        "--summary-json", str(summary_path),
    )  # fmt: skip
    code = demo.wait(240)
    out = demo.output
    assert code == 0, out
    summary = json.loads(summary_path.read_text())
    assert summary["sent"] == 300 and summary["failed"] == 0 and summary["malformed"] == 6
    assert summary["decisions"] == 294 and summary["dead_letters"] == 6, out
    assert summary["complete"] and not summary["interrupted"]
    assert 0 < summary["approvals"] <= summary["decisions"]
    assert summary["p50_ms"] > 0 and summary["p99_ms"] >= summary["p50_ms"]
    # preparation reused the prepared artifacts; every step was timed
    assert "✓ features reused" in out and "✓ model reused" in out
    assert {"broker", "redis", "cache", "worker", "warm-up"} <= set(summary["steps"])
    # no TTY: periodic plain lines instead of a redrawn table, ending at 100 %
    plain = [line for line in demo.lines if line.startswith("[") and "decisions/s" in line]
    assert plain and "handled 300/300 (100 %)" in plain[-1], out
    assert "demo complete" in out
    assert_children_gone(summary)


def test_ctrl_c_stops_everything(prepared_data_dir: Path, tmp_path: Path, run_demo: Any) -> None:
    summary_path = tmp_path / "summary.json"
    demo = run_demo(
        "--data-dir", str(prepared_data_dir), "--duration", "120", "--rate", "300",
        "--summary-json", str(summary_path),
    )  # fmt: skip
    demo.wait_for_line("▶ stream", 180)
    # wait until decisions flow, then interrupt as a user would
    deadline = time.monotonic() + 60
    while not any("decisions/s" in line and "handled 0" not in line for line in list(demo.lines)):
        assert time.monotonic() < deadline, demo.output
        time.sleep(0.1)
    demo.proc.send_signal(signal.SIGINT)
    code = demo.wait(90)
    out = demo.output
    assert code == 130, out
    assert "demo INTERRUPTED" in out and "stopped worker" in out
    summary = json.loads(summary_path.read_text())
    assert summary["interrupted"] and summary["decisions"] > 0
    assert summary["sent"] < 300 * 120  # stopped well before the end of the duration
    assert_children_gone(summary)


def test_bad_option_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "stream", "demo", "--rate", "-5", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=demo_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: option --rate must be >= 0, got -5.0"


def test_worker_failure_is_reported_and_cleaned_up(
    prepared_data_dir: Path, tmp_path: Path, run_demo: Any
) -> None:
    """A tampered model makes the worker exit at start: one clear error line, children stopped."""
    import shutil

    data_dir = tmp_path / "var"
    (data_dir / "features").parent.mkdir(parents=True)
    (data_dir / "features").symlink_to(prepared_data_dir / "features")
    shutil.copytree(prepared_data_dir / "models", data_dir / "models")
    model_txt = next((data_dir / "models").glob("*/model.txt"))
    model_txt.write_bytes(model_txt.read_bytes() + b"\n")  # sha256 no longer matches the model card
    summary_path = tmp_path / "summary.json"
    demo = run_demo("--data-dir", str(data_dir), "--limit", "50", "--summary-json", str(summary_path))
    code = demo.wait(180)
    out = demo.output
    assert code == 1, out
    errors = [line for line in demo.lines if line.startswith("error:")]
    assert len(errors) == 1 and "the worker exited during the warm-up" in errors[0], out
    assert "sha256" in errors[0] or "model" in errors[0], errors[0]
    summary = json.loads(summary_path.read_text())
    assert summary["error"] and not summary["complete"]
    assert_children_gone(summary)


@pytest.mark.slow
@pytest.mark.timeout(900)  # training on a loaded 2-core machine can take minutes
def test_demo_prepares_everything_from_scratch(sample_dir: Path, tmp_path: Path, run_demo: Any) -> None:
    """The README path on an empty data dir: feature build + training on the real sample, then stream."""
    summary_path = tmp_path / "summary.json"
    demo = run_demo(
        "--data-dir", str(tmp_path / "var"), "--limit", "200", "--rate", "1000",
        "--summary-json", str(summary_path),
    )  # fmt: skip
    code = demo.wait(900)
    out = demo.output
    assert code == 0, out
    assert "✓ features built" in out and "✓ model trained" in out
    assert (tmp_path / "var" / "features" / "features.parquet").is_file()
    assert list((tmp_path / "var" / "models").glob("*/model.txt"))
    summary = json.loads(summary_path.read_text())
    assert summary["decisions"] + summary["dead_letters"] == 200 and summary["complete"]
    assert_children_gone(summary)
