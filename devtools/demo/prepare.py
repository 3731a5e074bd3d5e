"""The demo's preparation steps and child processes (features, model, broker, Redis, cache, worker).

Each step calls the owning package's Python function (never a shell-out), except the worker, which is
deliberately a separate process (`credit-scorer stream worker`), as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.exceptions import DemoError

FEATURE_FILES = ("features.parquet", "feature_schema.json")
WORKER_STOP_TIMEOUT_S = 15.0


# --- child processes ---------------------------------------------------------------------------------
@dataclass
class DemoChild:
    """A child process of the demo with its address, and how to stop it."""

    name: str
    address: str
    handle: Any
    log_path: Path | None = None
    ports: tuple[int, ...] = ()
    pid: int | None = field(default=None, init=False)
    stopped: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        proc = self._popen()
        self.pid = proc.pid if proc is not None else getattr(self.handle, "pid", None)

    def _popen(self) -> subprocess.Popen[bytes] | None:
        if isinstance(self.handle, subprocess.Popen):
            return self.handle
        proc = getattr(self.handle, "process", None)
        return proc if isinstance(proc, subprocess.Popen) else None

    def exited(self) -> bool:
        proc = self._popen()
        return proc is not None and proc.poll() is not None

    def raise_if_exited(self, what: str) -> None:
        proc = self._popen()
        if proc is not None and proc.poll() is not None:
            raise DemoError(f"{what} (exit code {proc.returncode}): {self.log_tail()}")

    def log_tail(self, lines: int = 8) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "no log"
        text = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        return " | ".join(line.strip() for line in text) or f"empty log {self.log_path}"

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if isinstance(self.handle, subprocess.Popen):
            terminate(self.handle, WORKER_STOP_TIMEOUT_S)
        else:
            self.handle.stop()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "address": self.address, "ports": list(self.ports)}

    @classmethod
    def tansu(cls, log_path: Path) -> DemoChild:
        from devtools.exceptions import BrokerStartError
        from devtools.launchers import TansuBroker

        try:
            broker = TansuBroker(log_path=log_path).start()
        except BrokerStartError as exc:
            raise DemoError(f"broker: {exc}") from None
        return cls("tansu", broker.bootstrap_servers, broker, log_path, ports=(broker.port,))


def terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; always reaps the process."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the worker gets SIGTERM if the demo dies without cleaning up (e.g. SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # a terminal's Ctrl-C reaches the demo only; the demo stops the worker itself


def start_redis(run_dir: Path) -> DemoChild:
    from devtools.exceptions import RedisServerError
    from devtools.launchers import RedisServer

    try:
        server = RedisServer().start()
    except RedisServerError as exc:
        raise DemoError(f"redis: {exc}") from None
    assert server.port is not None
    return DemoChild("redis-server", f"{server.host}:{server.port}", server, ports=(server.port,))


def worker_command() -> list[str]:
    script = Path(sys.executable).with_name("credit-scorer")
    if script.is_file():
        return [str(script), "stream", "worker"]
    return [sys.executable, "-c", "from credit_scorer.cli import main; main()", "stream", "worker"]


def start_worker(
    bootstrap: str, redis_address: str, model_dir: Path, data_dir: Path, log_path: Path, settings: Any
) -> DemoChild:
    from devtools.launchers import free_port

    env = {
        **os.environ,
        "CREDIT_SCORER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CREDIT_SCORER_REDIS__URL": f"redis://{redis_address}/0",
        "CREDIT_SCORER_REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "CREDIT_SCORER_MODEL__PATH": str(model_dir),
        "CREDIT_SCORER_PATHS__DATA_DIR": str(data_dir),
        "CREDIT_SCORER_STREAM__METRICS_PORT": str(free_port()),
        "CREDIT_SCORER_STREAM__WEB_PORT": str(free_port()),
        "CREDIT_SCORER_KAFKA__SESSION_TIMEOUT_S": "6",
        "CREDIT_SCORER_KAFKA__REBALANCE_TIMEOUT_S": "5",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        try:
            proc = subprocess.Popen(
                worker_command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise DemoError(f"worker: cannot start {worker_command()[0]}: {exc}") from None
    metrics_port = int(env["CREDIT_SCORER_STREAM__METRICS_PORT"])
    web_port = int(env["CREDIT_SCORER_STREAM__WEB_PORT"])
    address = f"http://127.0.0.1:{metrics_port}/metrics"
    return DemoChild("worker", address, proc, log_path, ports=(metrics_port, web_port))


# --- topics ------------------------------------------------------------------------------------------
def create_topics(bootstrap: str, kafka: Any) -> None:
    """The applications, decisions, dead-letter, review and shadow topics (idempotent)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            for name in (
                kafka.applications_topic, kafka.decisions_topic, kafka.dead_letter_topic, kafka.review_topic,
                kafka.shadow_topic,
            ):  # fmt: skip
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(name, kafka.partitions, 1)])
        finally:
            await admin.close()

    try:
        asyncio.run(run())
    except Exception as exc:  # aiokafka raises many types; the demo names the step
        raise DemoError(f"broker: cannot create topics on {bootstrap}: {exc}") from None


# --- artifacts ---------------------------------------------------------------------------------------
def ensure_features(raw_dir: Path, out_dir: Path, *, rebuild: bool, info: dict[str, str]) -> Path:
    """``out_dir`` with a feature build of ``raw_dir``: reused when built from the same input files."""
    from feature_loader.build import build_features, input_fingerprint

    if not (raw_dir / "application_test.csv.gz").is_file():
        raise DemoError(f"features: no raw Home Credit files in {raw_dir} (application_test.csv.gz missing)")
    if not rebuild and all((out_dir / f).is_file() for f in FEATURE_FILES):
        built_from = _built_fingerprint(out_dir / "build_info.json")
        if built_from is not None and built_from == input_fingerprint(raw_dir).get("sha256"):
            info["detail"] = f"reused {out_dir} (same input files)"
            return out_dir
    from feature_loader.exceptions import FeatureLoaderError

    try:
        result = build_features(raw_dir, out_dir)
    except FeatureLoaderError as exc:
        raise DemoError(f"features: {exc}") from None
    info["detail"] = (
        f"built {out_dir}: {result.rows:,} clients ({result.train_rows:,} train, {result.test_rows:,} test) "
        f"× {len(result.schema)} features"
    )
    return out_dir


def _built_fingerprint(build_info: Path) -> str | None:
    import orjson

    try:
        fingerprint = orjson.loads(build_info.read_bytes())["input_fingerprint"]["sha256"]
    except (OSError, KeyError, TypeError, orjson.JSONDecodeError):
        return None
    return str(fingerprint)


def ensure_model(features_dir: Path, models_dir: Path, *, rebuild: bool, info: dict[str, str]) -> Path:
    """A model trained on this feature schema: the newest matching one, or a fresh one."""
    from feature_loader.feature_schema import FeatureSchema

    version = FeatureSchema.load(features_dir / "feature_schema.json").version
    if not rebuild:
        found = _newest_model_for(models_dir, version)
        if found is not None:
            info["detail"] = f"reused {found.name}"
            return found
    from training.exceptions import TrainingError
    from training.train import TrainConfig, train_model

    try:
        result = train_model(features_dir, models_dir, TrainConfig(folds=3, plots=False))
    except TrainingError as exc:
        raise DemoError(f"model: {exc}") from None
    info["detail"] = f"trained {result.model_dir.name}"
    return result.model_dir


def _newest_model_for(models_dir: Path, feature_version: str) -> Path | None:
    import orjson

    best: tuple[str, Path] | None = None
    if not models_dir.is_dir():
        return None
    for card_path in models_dir.glob("*/model_card.json"):
        try:
            card = orjson.loads(card_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if (
            card.get("feature_schema_version") != feature_version
            or not (card_path.parent / "model.txt").is_file()
        ):
            continue
        key = (str(card.get("created_at", "")), card_path.parent)
        if best is None or key[0] > best[0]:
            best = key
    return best[1] if best else None


def load_cache(features_dir: Path, redis_address: str, settings: Any, *, info: dict[str, str]) -> None:
    """Load the features into Redis and make their version live."""
    from feature_cache.exceptions import FeatureCacheError
    from feature_cache.loader import load_features, switch_version
    from feature_cache.store import create_sync_redis_client
    from feature_loader.exceptions import FeatureLoaderError

    redis_settings = settings.redis.model_copy(update={"url": f"redis://{redis_address}/0"})
    client = create_sync_redis_client(redis_settings)
    try:
        summary = load_features(client, features_dir, redis_settings.key_prefix)
        switch_version(client, redis_settings.key_prefix, summary.version)
    except (FeatureCacheError, FeatureLoaderError) as exc:
        raise DemoError(f"cache: {exc}") from None
    finally:
        client.close()
    info["detail"] = (
        f"{summary.clients:,} clients, {summary.bytes / 1e6:.1f} MB, version {summary.version} live "
        f"({summary.clients_per_s:,.0f} clients/s)"
    )
