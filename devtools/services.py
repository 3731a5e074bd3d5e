"""The API and the officer view as child processes (tests, the demo, benchmarks), each waited for
until it answers over HTTP and stopped with SIGTERM (then SIGKILL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from devtools.exceptions import ServiceStartError
from devtools.harness import settings_env
from devtools.launchers import free_port


class ServiceProcess:
    """``credit-scorer <args>`` with the settings' environment, ready when ``ready_path`` answers 200."""

    ready_path = "/"

    def __init__(self, settings: Any, args: list[str], port: int, log_path: Path | None = None) -> None:
        self.settings = settings
        self.args = args
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        exe = Path(sys.executable).with_name("credit-scorer")
        env = {**os.environ, **settings_env(self.settings), **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        out: Any = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            cmd = [str(exe), *self.args]
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServiceStartError(f"{' '.join(self.args)} exited with code {self.proc.returncode}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServiceStartError(f"{' '.join(self.args)} not ready on {self.url} after {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class ApiProcess(ServiceProcess):
    """``credit-scorer api serve`` (ready: GET /metrics answers, whatever /health says)."""

    ready_path = "/metrics"

    def __init__(self, settings: Any, port: int | None = None, log_path: Path | None = None) -> None:
        port = port or free_port()
        super().__init__(settings, ["api", "serve", "--port", str(port)], port, log_path)


class ViewProcess(ServiceProcess):
    """``credit-scorer view serve`` (Streamlit; ready: its health endpoint)."""

    ready_path = "/_stcore/health"

    def __init__(
        self, settings: Any, api_url: str, port: int | None = None, log_path: Path | None = None
    ) -> None:
        port = port or free_port()
        args = ["view", "serve", "--port", str(port), "--api-url", api_url]
        super().__init__(settings, args, port, log_path)
