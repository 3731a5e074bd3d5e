"""A throw-away local Redis Cluster: N ``redis-server --cluster-enabled yes`` on free loopback ports, joined
with ``redis-cli --cluster create`` (no replicas), for tests, the benchmarks and the docker-less demo::

    with LocalRedisCluster(nodes=3) as cluster:
        settings = RedisSettings(url=cluster.url)   # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…

A node can be killed (SIGKILL) and restarted on its port and folder: it reads back its ``nodes.conf``
(its slots) and its append-only file (its keys), as a crashed production node restarted by its
supervisor would. Each node's bus port is chosen free too (``--cluster-port``), not port + 10000.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from devtools.exceptions import RedisServerError
from devtools.launchers import find_redis_server_binary, free_port


def _redis_cli(server_binary: str) -> str:
    sibling = Path(server_binary).with_name("redis-cli")
    found = str(sibling) if sibling.is_file() else shutil.which("redis-cli")
    if not found:
        raise RedisServerError(
            "redis-cli not found (needed to create a Redis Cluster): apt-get install redis-tools"
        )
    return found


class LocalRedisCluster:
    """``nodes`` primaries sharing the 16,384 slots; stopped (folders removed) on exit."""

    def __init__(
        self,
        nodes: int = 3,
        *,
        host: str = "127.0.0.1",
        node_timeout_ms: int = 2_000,
        timeout_s: float = 30.0,
    ) -> None:
        self.host = host
        self.node_timeout_ms = node_timeout_ms
        self.timeout_s = timeout_s
        self.ports: list[int] = []
        self._bus_ports: list[int] = []
        self._n = nodes
        self._procs: list[subprocess.Popen[bytes] | None] = []
        self._workdir: Path | None = None
        self._bin = ""

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{self.host}:{p}" for p in self.ports)

    def start(self) -> LocalRedisCluster:
        """Start and join the nodes (a port taken meanwhile by another process: up to 3 tries)."""
        for attempt in range(3):
            try:
                return self._start_once()
            except RedisServerError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _free_ports(self, n: int) -> list[int]:
        ports: list[int] = []
        while len(ports) < n:  # distinct: a port is free until its node binds it, so ask again
            port = free_port(self.host)
            if port not in ports and port not in self.ports and port not in self._bus_ports:
                ports.append(port)
        return ports

    def _start_once(self) -> LocalRedisCluster:
        self._bin = find_redis_server_binary()
        self._workdir = Path(tempfile.mkdtemp(prefix="credit-scorer-cluster-"))
        self.ports, self._procs, self._bus_ports = [], [], []
        ports = self._free_ports(2 * self._n)
        self.ports, self._bus_ports = ports[: self._n], ports[self._n :]
        self._procs = [None] * self._n
        try:
            for i in range(self._n):
                self._spawn(i)
            for i in range(self._n):
                self._wait_ping(i)
            nodes = [f"{self.host}:{p}" for p in self.ports]
            create = [_redis_cli(self._bin), "--cluster", "create", *nodes, "--cluster-replicas", "0"]
            done = subprocess.run(
                [*create, "--cluster-yes"], capture_output=True, timeout=self.timeout_s, check=False
            )
            if done.returncode != 0:
                raise RedisServerError(f"redis-cli --cluster create failed: {done.stdout[-400:]!r}")
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, i: int) -> None:
        assert self._workdir is not None
        folder = self._workdir / str(self.ports[i])
        folder.mkdir(exist_ok=True)
        args = [
            self._bin,
            "--port", str(self.ports[i]),
            "--bind", self.host,
            "--dir", str(folder),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self._bus_ports[i]),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--appendonly", "yes",  # a killed node restarts with its keys
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        with (folder / "redis.log").open("ab") as log:
            self._procs[i] = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _wait_ping(self, i: int) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            proc = self._procs[i]
            if proc is None or proc.poll() is not None:
                raise RedisServerError(f"cluster node {self.host}:{self.ports[i]} exited at start")
            try:
                with redis.Redis(self.host, self.ports[i], socket_timeout=0.5) as client:
                    if client.ping():
                        return
            except redis.exceptions.RedisError:
                time.sleep(0.02)  # back-off between polls of a deadline-bounded loop
        raise RedisServerError(
            f"cluster node {self.host}:{self.ports[i]} not ready in {self.timeout_s:.0f} s"
        )

    def wait_ok(self) -> None:
        """Until every running node reports ``cluster_state:ok`` (all slots served)."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if all(self._state(i) == "ok" for i in range(self._n) if self._procs[i] is not None):
                return
            time.sleep(0.05)  # back-off between polls of a deadline-bounded loop
        raise RedisServerError(f"Redis Cluster {self.url} not ok after {self.timeout_s:.0f} s")

    def _state(self, i: int) -> str:
        try:
            with redis.Redis(self.host, self.ports[i], socket_timeout=0.5) as client:
                return str(client.cluster("INFO").get("cluster_state", ""))
        except redis.exceptions.RedisError:
            return ""

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (its slots are unserved until :meth:`restart`)."""
        proc, self._procs[i] = self._procs[i], None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self, i: int) -> None:
        """Start node ``i`` again on its port and folder, then wait for the cluster to be ok."""
        self._spawn(i)
        self._wait_ping(i)
        self.wait_ok()

    def stop(self) -> None:
        for i, proc in enumerate(self._procs):
            self._procs[i] = None
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
