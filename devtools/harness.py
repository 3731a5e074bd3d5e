"""Helpers to drive and observe a worker from tests and benchmarks (real broker and Redis only).

* :func:`application_payloads` — application events (JSON bytes) built from a feature table's rows, so
  the online vector of each event equals the table row (scores comparable with the offline model);
* :func:`produce_payloads` — send raw payloads to a topic fast (``send_batch``) or at a fixed rate;
* :func:`collect` — consume a topic from the beginning until N records / given keys / the log end, or a
  deadline (never on idleness);
* :func:`load_cache` — put a feature table into Redis under its schema version and switch to it;
* :class:`KafkaTopics`, :func:`create_topics`, :func:`settings_for` — fresh topics and the settings of a
  worker pointed at them (the test fixtures and the benchmarks share them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from credit_scorer.settings import Settings
from feature_loader.feature_schema import FeatureKind, FeatureSchema, FeatureSource
from kafka_io.records import Record
from kafka_io.sender import RecordPublisher

# Low timeouts so group joins and take-overs happen in a few seconds.
LOW_SESSION_TIMEOUT_S = 6.0
LOW_REBALANCE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class KafkaTopics:
    applications: str
    decisions: str
    dead_letters: str
    group: str
    partitions: int
    reviews: str | None = None  # REFER decisions for human review (None: the settings' default name)


async def create_topics(bootstrap_servers: str, names: list[str], partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


def settings_for(bootstrap_servers: str, topics: KafkaTopics, **stream: Any) -> Settings:
    """Settings pointing at ``topics`` on the broker, low timeouts, metrics server disabled (port 0)."""
    base = Settings()
    kafka = base.kafka.model_copy(
        update={
            "bootstrap_servers": bootstrap_servers,
            "applications_topic": topics.applications,
            "decisions_topic": topics.decisions,
            "dead_letter_topic": topics.dead_letters,
            **({"review_topic": topics.reviews} if topics.reviews else {}),
            "consumer_group": topics.group,
            "partitions": topics.partitions,
            "session_timeout_s": LOW_SESSION_TIMEOUT_S,
            "rebalance_timeout_s": LOW_REBALANCE_TIMEOUT_S,
            "request_timeout_s": 10.0,
        }
    )
    stream_settings = base.stream.model_copy(
        update={"metrics_port": 0, "web_port": 0, "retry_initial_s": 0.05, "retry_max_s": 0.5, **stream}
    )
    return base.model_copy(update={"kafka": kafka, "stream": stream_settings})


@dataclass(frozen=True)
class ConsumedRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


def application_payloads(
    schema: FeatureSchema,
    ids: np.ndarray,
    matrix: np.ndarray,
    rows: Sequence[int],
    *,
    id_prefix: str = "app",
    event_time: float | None = None,
) -> list[Record]:
    """One (key, JSON) application per row: its client and every *event* field of the row."""
    events = [f for f in schema.fields if f.source is FeatureSource.EVENT]
    cols = [schema.index[f.name] for f in events]
    out: list[Record] = []
    for n, row in enumerate(rows):
        app_id = f"{id_prefix}-{n}"
        doc: dict[str, Any] = {"application_id": app_id, "sk_id_curr": int(ids[row])}
        if event_time is not None:
            doc["event_time"] = event_time
        for f, c in zip(events, cols, strict=True):
            value = float(matrix[row, c])
            if value != value:
                continue
            doc[f.name] = f.categories[int(value)] if f.kind is FeatureKind.CATEGORICAL else value  # type: ignore[index]
        out.append((app_id.encode(), orjson.dumps(doc)))
    return out


async def produce_payloads(
    bootstrap_servers: str,
    topic: str,
    records: Sequence[Record],
    *,
    rate: float | None = None,
    chunk: int = 500,
) -> float:
    """Send ``records`` keyed (murmur2 partitioning); at ``rate`` events/s if given. Returns seconds."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        linger_ms=0,
        max_batch_size=512 * 1024,
        enable_idempotence=False,
    )
    await producer.start()
    publisher = RecordPublisher(producer)
    started = time.perf_counter()
    try:
        step = chunk if rate is None else max(1, int(rate / 200))  # ~5 ms slices at a fixed rate
        for i in range(0, len(records), step):
            if rate is not None:
                due = started + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            groups = await publisher.plan(topic, records[i : i + step])
            failed = await publisher.send_groups(groups)
            if failed:
                raise RuntimeError(f"{len(failed)} batches to {topic} were not acknowledged")
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def collect(
    bootstrap_servers: str,
    topic: str,
    expected: int = 0,
    *,
    keys: Collection[bytes] = (),
    to_end: bool = False,
    timeout_s: float = 30.0,
) -> list[ConsumedRecord]:
    """Read ``topic`` from the beginning (no group) until the run's end condition holds, or the deadline.

    The condition: at least ``expected`` records, every key in ``keys`` seen, and with ``to_end`` every
    partition read up to the log end that the broker's fetch responses report (their high watermark:
    Tansu's ListOffsets is wrong). Once every writer has stopped, ``to_end`` returns everything the topic
    holds (duplicates included); before that, everything written until the other conditions held. Never
    stops on idleness: a writer paused longer than any guess (a rebalance) is waited for until
    ``timeout_s``. At the deadline, returns what it read (the caller's assertions name what is missing).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    out: list[ConsumedRecord] = []
    missing = set(keys)
    try:
        parts = await _partitions(consumer, topic, timeout_s)
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for msgs in data.values():
                out.extend(ConsumedRecord(m.partition, m.offset, m.key, m.value, m.timestamp) for m in msgs)
                missing.difference_update(m.key for m in msgs)
            if len(out) >= expected and not missing and (not to_end or await _at_end(consumer, tps)):
                break
    finally:
        await consumer.stop()
    return out


async def _at_end(consumer: Any, tps: Sequence[Any]) -> bool:
    """Every partition's position has reached the high watermark of its latest fetch response."""
    for tp in tps:
        end = consumer.highwater(tp)
        if end is None or await consumer.position(tp) < end:
            return False
    return True


async def _partitions(consumer: Any, topic: str, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return sorted(parts)
        await consumer.topics()  # refreshes the metadata
        await asyncio.sleep(0.05)
    raise TimeoutError(f"topic {topic} has no partitions after {timeout_s}s")


def load_cache(redis_url: str, prefix: str, feature_dir: Path) -> str:
    """Load ``feature_dir`` (features.parquet + feature_schema.json) into Redis and make it live."""
    from credit_scorer.settings import RedisSettings
    from feature_cache.loader import load_features, switch_version
    from feature_cache.store import create_sync_redis_client

    client = create_sync_redis_client(RedisSettings(url=redis_url))  # a redis+cluster:// URL too
    try:
        summary = load_features(client, feature_dir, prefix)
        switch_version(client, prefix, summary.version)
        return str(summary.version)
    finally:
        client.close()


def settings_env(settings: Any) -> dict[str, str]:
    """``CREDIT_SCORER_<GROUP>__<FIELD>`` variables reproducing ``settings`` in a child process."""
    env: dict[str, str] = {}
    for group_name in ("paths", "kafka", "redis", "mlflow", "model", "stream", "store", "api", "view"):
        group = getattr(settings, group_name)
        for name in type(group).model_fields:
            value = getattr(group, name)
            if value is None:
                continue
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            env[f"CREDIT_SCORER_{group_name.upper()}__{name.upper()}"] = str(value)
    env["CREDIT_SCORER_LOG_LEVEL"] = settings.log_level
    return env


class WorkerProcess:
    """``credit-scorer stream worker`` as a child process (tests, chaos runs, benchmarks)."""

    def __init__(self, settings: Any, engine: str = "batch", log_path: Path | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.log_path = log_path
        self.proc: Any = None

    def command(self) -> list[str]:
        return ["stream", "worker", "--engine", self.engine]

    def start(self) -> WorkerProcess:
        import os
        import subprocess
        import sys

        exe = Path(sys.executable).with_name("credit-scorer")
        cmd = [str(exe), *self.command()]
        env = {**os.environ, **settings_env(self.settings), "PYTHONUNBUFFERED": "1"}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        return self

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (no cleanup at all: the chaos case)."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        import subprocess

        if self.proc is None:
            return 0
        if self.alive():
            self.proc.terminate()
        try:
            return int(self.proc.wait(timeout_s))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def metrics_text(self, timeout_s: float = 1.0) -> str:
        """The worker's /metrics page ('' when not reachable yet)."""
        import urllib.request

        port = self.settings.stream.metrics_port
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as resp:
                return resp.read().decode()
        except OSError:
            return ""


class StoreSinkProcess(WorkerProcess):
    """``credit-scorer store sink`` as a child process (settings.store says where it writes)."""

    def command(self) -> list[str]:
        return ["store", "sink"]


def sample_total(metrics_text: str, name: str) -> float:
    """Sum of every sample named ``name`` (any labels) in a Prometheus text page."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total
