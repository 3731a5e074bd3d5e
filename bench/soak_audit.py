"""The soak benchmark's audit (:mod:`bench.bench_soak`): read the applications, decisions and
dead-letter topics back and reconcile them by application id; latency percentiles per minute.

Application ids are the producer's ``<run id>-<sequence>`` (:class:`devtools.producer.EventFactory`):
the sequence keeps counting when ``--repeat`` cycles through the CSV again, so every event of a run has
its own id, and ids are counted per run in arrays indexed by sequence (a million ids in a few MB).

The reader joins no group and reads each topic from its beginning up to the high watermark that the
fetch responses report (Tansu answers ListOffsets LATEST wrongly). Its long-poll is long
(``FETCH_WAIT_MS``): Tansu's memory storage answers a fetch with what it could read within the request's
wait, and on a log of a million records a short wait comes back empty, which is the stall this
benchmark exists to catch.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np
import orjson

FETCH_WAIT_MS = 1000
PARTITION_FETCH_BYTES = 16 * 1024 * 1024
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


class KeyCounts:
    """How many records carry each application id, per producer run."""

    def __init__(self) -> None:
        self.runs: dict[str, np.ndarray] = {}  # run id → records per sequence number
        self.other: Counter[bytes | None] = Counter()  # keys that are not "<run>-<sequence>"

    def add(self, keys: Iterable[bytes | None]) -> None:
        by_run: dict[bytes, list[int]] = {}
        for key in keys:
            run, _, seq = (key or b"").rpartition(b"-")
            if run and seq.isdigit():
                by_run.setdefault(run, []).append(int(seq))
            else:
                self.other[key] += 1
        for run_b, seqs in by_run.items():
            run, idx = run_b.decode(), np.asarray(seqs, dtype=np.int64)
            counts = self.runs.get(run, np.zeros(0, dtype=np.uint16))
            if idx.max() >= len(counts):
                counts = np.concatenate([counts, np.zeros(int(idx.max()) + 1 - len(counts), np.uint16)])
            np.add.at(counts, idx, 1)
            self.runs[run] = counts

    def of(self, run: str, size: int) -> np.ndarray:
        counts = self.runs.get(run, np.zeros(0, dtype=np.uint16)).astype(np.int64)
        return np.pad(counts, (0, max(0, size - len(counts))))


class DecisionTimes:
    """Per decision record: its event time (epoch s), its own latency total and queue stage (event time
    → consumed by the worker), and the time from the event to the decision record's Kafka timestamp
    (the worker's producer stamps it when it appends)."""

    def __init__(self) -> None:
        self.event_s = array("d")
        self.decided_ms = array("d")
        self.queued_ms = array("d")
        self.published_ms = array("d")
        self.unreadable = 0

    def add(self, value: bytes | None, timestamp_ms: int) -> None:
        try:
            doc = orjson.loads(value or b"")
            event_s = datetime.fromisoformat(doc["event_time"]).timestamp()
            total_s = float(doc["latency"]["total_s"])
            queue_s = float(doc["latency"]["queue_s"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.unreadable += 1
            return
        self.event_s.append(event_s)
        self.decided_ms.append(total_s * 1000)
        self.queued_ms.append(queue_s * 1000)
        self.published_ms.append(timestamp_ms - event_s * 1000)


async def read_topic(
    bootstrap: str, topic: str, on_batch: Callable[[list[Any]], None], timeout_s: float
) -> dict[str, Any]:
    """Feed every record of ``topic`` to ``on_batch``, from the beginning to the log end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_WAIT_MS,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        fetch_max_bytes=4 * PARTITION_FETCH_BYTES,
    )
    await consumer.start()
    started = time.monotonic()
    records = polls = empty_polls = 0
    try:
        await consumer.topics()  # metadata
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not await _at_end(consumer, tps) and time.monotonic() - started < timeout_s:
            data = await consumer.getmany(timeout_ms=2 * FETCH_WAIT_MS, max_records=50_000)
            polls += 1
            empty_polls += not data
            for msgs in data.values():
                on_batch(msgs)
                records += len(msgs)
        complete = await _at_end(consumer, tps)
        ends = {tp.partition: consumer.highwater(tp) for tp in tps}
        positions = {tp.partition: await consumer.position(tp) for tp in tps}
    finally:
        await consumer.stop()
    seconds = time.monotonic() - started
    return {
        "records": records,
        "complete": complete,  # False: the deadline passed before the log end
        "log_end": ends,
        "read_to": positions,
        "seconds": round(seconds, 1),
        "records_per_s": round(records / max(seconds, 1e-3)),
        "polls": polls,
        "empty_polls": empty_polls,
    }


async def _at_end(consumer: Any, tps: list[Any]) -> bool:
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


async def read_back(bootstrap: str, kafka: Any, timeout_s: float) -> dict[str, Any]:
    """Read the three topics back; the counts per application id and the decisions' times."""
    apps, decs, dead = KeyCounts(), KeyCounts(), KeyCounts()
    times = DecisionTimes()

    def on_decisions(msgs: list[Any]) -> None:
        decs.add(m.key for m in msgs)
        for m in msgs:
            times.add(m.value, m.timestamp)

    reads = {
        "applications": await read_topic(
            bootstrap, kafka.applications_topic, lambda ms: apps.add(m.key for m in ms), timeout_s
        ),
        "decisions": await read_topic(bootstrap, kafka.decisions_topic, on_decisions, timeout_s),
        "dead_letters": await read_topic(
            bootstrap, kafka.dead_letter_topic, lambda ms: dead.add(m.key for m in ms), timeout_s
        ),
    }
    return {"reads": reads, "counts": (apps, decs, dead), "times": times}


def reconcile(apps: KeyCounts, decs: KeyCounts, dead: KeyCounts) -> dict[str, Any]:
    """Per producer run and in total: applications on the topic, decided, dead-lettered, undecided,
    duplicate decisions, decisions of ids never on the applications topic."""
    runs: dict[str, dict[str, Any]] = {}
    for run in sorted(set(apps.runs) | set(decs.runs) | set(dead.runs)):
        size = max(len(c.runs.get(run, ())) for c in (apps, decs, dead))
        a, d, q = apps.of(run, size), decs.of(run, size), dead.of(run, size)
        undecided = np.flatnonzero((a > 0) & (d == 0) & (q == 0))
        runs[run] = {
            "applications": int((a > 0).sum()),
            "application_records": int(a.sum()),
            "decided": int(((a > 0) & (d > 0)).sum()),
            "decision_records": int(d.sum()),
            "dead_letters": int(q.sum()),
            "undecided": len(undecided),
            "undecided_ids": [f"{run}-{i}" for i in undecided[:10]],
            "duplicates": int(np.clip(d - 1, 0, None).sum() + np.clip(q - 1, 0, None).sum()),
            "decided_and_dead_lettered": int(((d > 0) & (q > 0)).sum()),
            "decisions_without_application": int(((d > 0) & (a == 0)).sum()),
        }
    totals = {
        k: sum(r[k] for r in runs.values()) for k in next(iter(runs.values()), {}) if k != "undecided_ids"
    }
    foreign = {"applications": sum(apps.other.values()), "decisions": sum(decs.other.values())}
    return {"total": totals, "runs": runs, "keys_not_from_the_producer": foreign}


def latency_buckets(times: DecisionTimes, since_s: float, bucket_s: float = 60.0) -> list[dict[str, Any]]:
    """Latency percentiles (ms) of the decisions whose event time is at or after ``since_s``, bucketed
    by the minute (``bucket_s``) of their event time counted from the first such event."""
    event_s = np.frombuffer(times.event_s, dtype=np.float64)
    keep = event_s >= since_s
    if not keep.any():
        return []
    event_s = event_s[keep]
    decided = np.frombuffer(times.decided_ms, dtype=np.float64)[keep]
    published = np.frombuffer(times.published_ms, dtype=np.float64)[keep]
    queued = np.frombuffer(times.queued_ms, dtype=np.float64)[keep]
    minute = ((event_s - event_s.min()) // bucket_s).astype(np.int64)
    out = []
    for m in np.unique(minute):
        sel = minute == m
        out.append(
            {
                "from_s": round(float(m * bucket_s), 1),  # since the first event of the stream
                "decisions": int(sel.sum()),
                "decided_ms": _quantiles(decided[sel]),
                "published_ms": _quantiles(published[sel]),
                "queued_ms": _quantiles(queued[sel]),
            }
        )
    return out


def _quantiles(xs: np.ndarray) -> dict[str, float]:
    qs = np.quantile(xs, list(QUANTILES.values())) if len(xs) else [float("nan")] * len(QUANTILES)
    return {k: round(float(v), 2) for k, v in zip(QUANTILES, qs, strict=True)} | {
        "max": round(float(xs.max()), 2) if len(xs) else float("nan")
    }
