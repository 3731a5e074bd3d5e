"""The demo's store sink, API and officer view (``credit-scorer stream demo --view``): three child
processes on the demo's broker, Redis and model, the store a SQLite file of this run under
``<data_dir>/demo``. Started without waiting (the API's cold start overlaps the worker's); the view's
URL is printed once it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from devtools.demo.prepare import DemoChild, _die_with_parent, worker_command
from devtools.exceptions import DemoError
from devtools.launchers import free_port

if TYPE_CHECKING:
    from rich.console import Console

    from devtools.demo.run import StepPrinter

API_PORT, VIEW_PORT = 8000, 8501


def _port(preferred: int) -> int:
    """``preferred`` when free on the loopback (a stable URL for the reader), else any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _spawn(name: str, args: list[str], env: dict[str, str], log_path: Path, address: str) -> DemoChild:
    cmd = [*worker_command()[:-2], *args]  # the credit-scorer entry point, another sub-command
    with log_path.open("wb") as log:
        try:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        except OSError as exc:
            raise DemoError(f"{name}: cannot start {cmd[0]}: {exc}") from None
    return DemoChild(name, address, proc, log_path)


def start_services(
    bootstrap: str,
    redis_address: str,
    model_dir: Path,
    data_dir: Path,
    run_dir: Path,
    settings: Any,
    worker_metrics: str,
) -> tuple[list[DemoChild], str]:
    """(the children: sink, API, view; the view's URL)."""
    store = run_dir / "decisions.sqlite3"
    for old in run_dir.glob("decisions.sqlite3*"):  # a fresh store per run, like the broker's topics
        old.unlink()
    api_port, view_port, sink_port = _port(API_PORT), _port(VIEW_PORT), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env = {
        **os.environ,
        "CREDIT_SCORER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CREDIT_SCORER_REDIS__URL": f"redis://{redis_address}/0",
        "CREDIT_SCORER_REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "CREDIT_SCORER_MODEL__PATH": str(model_dir),
        "CREDIT_SCORER_PATHS__DATA_DIR": str(data_dir),
        "CREDIT_SCORER_STORE__URL": f"sqlite:///{store}",
        "CREDIT_SCORER_STORE__METRICS_PORT": str(sink_port),
    }
    children = [
        _spawn("store-sink", ["store", "sink"], env, run_dir / "store-sink.log", f"sqlite:///{store}"),
        _spawn("api", ["api", "serve", "--port", str(api_port)], env, run_dir / "api.log", api_url),
    ]
    view_url = f"http://127.0.0.1:{view_port}"
    metrics_urls = f"{worker_metrics},http://127.0.0.1:{sink_port}/metrics"
    view_env = {**env, "CREDIT_SCORER_VIEW__METRICS_URLS": metrics_urls}
    view_args = ["view", "serve", "--port", str(view_port), "--api-url", api_url]
    children.append(_spawn("view", view_args, view_env, run_dir / "view.log", view_url))
    return children, view_url


def wait_for_view(view: DemoChild, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view.raise_if_exited("the officer view exited")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise DemoError(f"the officer view did not answer on {url} within {timeout_s:.0f}s; see {view.log_path}")


def start_view_services(
    steps: StepPrinter,
    children: list[DemoChild],
    bootstrap: str,
    redis_address: str,
    model_dir: Path,
    run_dir: Path,
) -> str:
    """Start the store sink, the API and the view beside the demo's worker (the last of ``children``),
    add them to ``children`` and return the view's URL (not waited for here)."""
    from credit_scorer.settings import get_settings

    with steps.step("services", "store sink, API and officer view subprocesses") as info:
        data_dir = run_dir.parent
        worker_metrics = children[-1].address  # the worker's /metrics, for the monitoring page
        started, url = start_services(
            bootstrap, redis_address, model_dir, data_dir, run_dir, get_settings(), worker_metrics
        )
        children.extend(started)
        info["detail"] = ", ".join(f"{c.name} (pid {c.pid})" for c in started)
    return url


def serve_until_interrupted(console: Console, view_url: str) -> None:
    console.print(
        f"[bold]the stream is over; the officer view stays at {view_url} — Ctrl-C stops everything[/]"
    )
    while True:
        time.sleep(0.5)
