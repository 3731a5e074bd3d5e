"""Load generator and decision collector of the stream latency benchmark, each in its own process.

    python -m bench.stream_load offer   --bootstrap BS --topic T --rate R --docs FILE
    python -m bench.stream_load collect --bootstrap BS --topic T --expected N [--timeout S]

Both print one JSON line on stdout at the end (the collector prints ``{"ready": true}`` first, once it
is reading). They run apart from the measured worker and from each other, so neither the producer's
nor the collector's Python competes with the worker for a GIL (on 2 cores they still share CPUs).

* ``offer``: the payloads are encoded once up front, without ``event_time``; on each tick (1 ms) the
  records due by then (absolute schedule ``t0 + i / rate``) get ``"event_time": <now>`` spliced in and
  go out through :func:`kafka_io.sender.send_records`: one ``send_batch`` per partition (murmur2 of the
  key, like any Kafka client), or several when a late tick carries more than one producer batch holds
  (aiokafka's default ``max_batch_size``, 16 KiB). Reports the achieved rate, the largest tick and every
  batch's acknowledged offsets (:func:`audit` checks them against the log).
* ``collect``: reads the decisions topic from the beginning (no group) and records, for each decision
  whose key starts with ``lat-``, "received" = read time − event time, "decided" = the decision's own
  ``latency.total_s`` and the per-stage latencies. Pointed at the applications topic (no worker), it
  measures the broker's own floor: one produce → fetch hop at the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

STAGES = ("queue_s", "features_s", "inference_s", "reasons_s", "total_s")
TICK_S = 0.001


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")
    sys.stdout.flush()


async def offer(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], rate: float, tick_s: float = TICK_S
) -> dict[str, Any]:
    """Send ``records`` (value = a JSON object without event_time) at ``rate``/s, stamped when sent."""
    from aiokafka import AIOKafkaProducer

    from kafka_io.partitioner import partition_for
    from kafka_io.sender import send_records

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=0, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
        keys = [k for k, _ in records]
        heads = [v[:-1] for _, v in records]  # "{...": the closing brace comes with the stamp
        part_of = [partition_for(k, parts) for k in keys]
        futures: list[asyncio.Future[Any]] = []
        acks: list[float] = []  # stamp → broker ack, per send_batch
        counts: list[int] = []  # records per send_batch (same order as futures)
        firsts: list[int] = []  # index of each send_batch's first record
        n, i, ticks, largest_tick = len(records), 0, 0, 0
        started = time.perf_counter()
        while i < n:
            now = time.perf_counter()
            due = min(n, int((now - started) * rate) + 1)
            if due <= i:
                await asyncio.sleep(max(tick_s, started + i / rate - now))
                continue
            stamped = time.perf_counter()
            tail = b',"event_time":"' + datetime.now(UTC).isoformat().encode() + b'"}'
            by_partition: dict[int, list[int]] = {}  # partition → indices of its records due now
            for j in range(i, due):
                by_partition.setdefault(part_of[j], []).append(j)
            for p, idx in by_partition.items():
                sent = await send_records(producer, topic, p, [(keys[j], heads[j] + tail) for j in idx])
                for s in sent:
                    counts.append(s.count)
                    firsts.append(idx[s.first])
                    s.future.add_done_callback(lambda _f, t=stamped: acks.append(time.perf_counter() - t))
                    futures.append(s.future)
            largest_tick = max(largest_tick, due - i)
            i, ticks = due, ticks + 1
            await asyncio.sleep(tick_s)
        elapsed = time.perf_counter() - started
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    if sum(counts) != n:
        raise RuntimeError(f"{n} records offered but {sum(counts)} were in the batches sent")
    return {
        "acked_records": sum(counts),
        # [partition, base offset the broker acknowledged, records, index of the first record]
        "acked": [[m.partition, m.offset, c, f] for m, c, f in zip(metas, counts, firsts, strict=True)],
        "sent": n,
        "largest_tick": largest_tick,  # records due at once after the offerer's longest stall
        "seconds": round(elapsed, 3),
        "achieved_per_s": round(n / elapsed, 1),
        "ticks": ticks,
        "ack_ms": {"p50": _ms(acks, 0.5), "p99": _ms(acks, 0.99)},  # event time → broker ack
    }


def acked_anomalies(acked: list[list[int]]) -> list[str]:
    """Where the broker's acknowledged offsets ([partition, base offset, records, first index] per
    batch, in send order) are not contiguous per partition: overlaps (offsets handed out twice) or
    holes (offsets skipped)."""
    out: list[str] = []
    end: dict[int, int] = {}
    for p, base, count, first in acked:
        if p in end and base != end[p]:
            what = "overlaps" if base < end[p] else "skips"
            out.append(f"p{p}: batch of {count} from #{first} acked at {base}, {what} (next was {end[p]})")
        end[p] = base + count
    return out


def _ms(xs: list[float], q: float) -> float:
    return round(float(np.quantile(np.asarray(xs), q)) * 1000, 2) if xs else float("nan")


async def collect(
    bootstrap: str, topic: str, expected: int, timeout_s: float, prefix: bytes = b"lat-"
) -> dict[str, Any]:
    """Read decisions until ``expected`` whose key starts with ``prefix`` (or the deadline); latency
    quantiles in ms."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=2
    )
    await consumer.start()
    received: list[float] = []
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    seen: set[bytes] = set()
    next_at: dict[int, int] = {}  # partition → offset expected next (the topic is neither compacted
    gaps: list[str] = []  # nor transactional: a jump means the fetch skipped records)
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=50)
        _emit({"ready": True})
        deadline = time.monotonic() + timeout_s
        while len(seen) < expected and time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=50)
            now = time.time()
            for msgs in data.values():
                for m in msgs:
                    if m.offset != next_at.setdefault(m.partition, m.offset):
                        gaps.append(f"p{m.partition}:{next_at[m.partition]}->{m.offset}")
                    next_at[m.partition] = m.offset + 1
                    if not (m.key or b"").startswith(prefix) or m.key in seen:
                        continue  # warm-up decisions, duplicates
                    seen.add(m.key)
                    d = orjson.loads(m.value)
                    received.append(now - datetime.fromisoformat(d["event_time"]).timestamp())
                    lat = d.get("latency")  # absent when reading the applications themselves
                    for k, values in stages.items() if lat else ():
                        values.append(lat[k])
    finally:
        await consumer.stop()

    return {
        "decisions": len(received),
        "read_to": {
            str(p): o for p, o in sorted(next_at.items())
        },  # next offset per partition when it stopped
        "offset_gaps": gaps,
        "received_ms": {"p50": _ms(received, 0.5), "p99": _ms(received, 0.99), "max": _ms(received, 1.0)},
        "stage_ms": {k: {"p50": _ms(v, 0.5), "p99": _ms(v, 0.99)} for k, v in stages.items() if v},
    }


# --- audit: what is on the topics, whatever the collector saw ---------------------------------------
async def audit(
    bootstrap: str,
    applications: str,
    decisions: str,
    group: str | None,
    expected: int,
    prefix: bytes = b"lat-",
    timeout_s: float = 30.0,
    acked: list[list[int]] | None = None,
) -> dict[str, Any]:
    """Re-read both topics from the beginning with fresh consumers (no group) and tell where measured
    records are missing: never on the applications topic (producer side), on it but without a decision
    on the decisions topic (worker side: compared with the group's committed offsets), or decided but
    not collected (collector side, compared by the caller)."""
    from devtools.harness import collect as read_topic

    apps = await read_topic(bootstrap, applications, expected, timeout_s=timeout_s, idle_s=1.0)
    decs = await read_topic(bootstrap, decisions, expected, timeout_s=timeout_s, idle_s=1.0)
    app_at = {r.key: (r.partition, r.offset) for r in apps if (r.key or b"").startswith(prefix)}
    decided = {r.key for r in decs if (r.key or b"").startswith(prefix)}
    missing = sorted(set(app_at) - decided, key=lambda k: app_at[k])
    out: dict[str, Any] = {
        "applications_on_topic": len(app_at),
        "decisions_on_topic": len(decided),
        "decision_records_on_topic": sum((r.key or b"").startswith(prefix) for r in decs),
        "undecided": len(missing),
        "log_end": _log_end(apps),
        "offset_gaps": _gaps(apps) + _gaps(decs),  # neither topic is compacted nor transactional
    }
    absent = [i for i in range(expected) if prefix + str(i).encode() not in app_at]
    if absent:  # offered (and acknowledged by the broker) but not in the log
        out["never_on_topic"] = _ranges([(0, i) for i in absent])
    if acked is not None:
        out["acked_anomalies"] = acked_anomalies(acked)
        out["acked_end"] = {p: b + c for p, b, c, _ in acked}  # the last batch per partition
        key_at = {(r.partition, r.offset): (r.key or b"-").decode() for r in apps}
        lost = set(absent)
        out["lost_batches"] = [  # acked batches whose first record is not in the log
            f"p{p}: {c} records from #{f} acked at {b}; the log holds there "
            + ",".join(key_at.get((p, o), "-") for o in range(b, b + c))
            for p, b, c, f in acked
            if f in lost
        ][:10]
    if missing:
        out["undecided_at"] = _ranges([app_at[k] for k in missing])
    if group is not None:
        out["committed"] = await committed_offsets(bootstrap, applications, group)
    return out


def _log_end(records: list[Any]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for r in records:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    return dict(sorted(ends.items()))


def _gaps(records: list[Any]) -> list[str]:
    nxt: dict[int, int] = {}
    out = []
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        if r.offset != nxt.setdefault(r.partition, r.offset):
            out.append(f"p{r.partition}:{nxt[r.partition]}->{r.offset}")
        nxt[r.partition] = r.offset + 1
    return out


def _ranges(at: list[tuple[int, int]]) -> list[str]:
    """(partition, offset) pairs as "p<partition>:<first>-<last>" runs of consecutive offsets."""
    runs: list[list[int]] = []
    for p, o in sorted(at):
        if runs and runs[-1][0] == p and runs[-1][2] == o - 1:
            runs[-1][2] = o
        else:
            runs.append([p, o, o])
    return [f"p{p}:{a}-{b} ({b - a + 1})" for p, a, b in runs[:50]]


async def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int | None]:
    """The group's committed offset of each partition (OffsetFetch; the consumer joins no group)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # metadata
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in parts}
    finally:
        await consumer.stop()


# --- driving both from the benchmark ----------------------------------------------------------------
def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.stream_load", *args], stdout=subprocess.PIPE, env={**os.environ}
    )


def _last_json(proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout_s)
    return dict(orjson.loads(out.splitlines()[-1]))


def offer_and_collect(
    bs: str,
    offer_topic: str,
    collect_topic: str,
    rows: list[Any],
    rate: float,
    seconds: float,
    tick_ms: float,
    logs: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``rows`` offered to ``offer_topic`` by one process while another reads ``collect_topic``."""
    docs_file = logs / f"offer-{os.getpid()}-{offer_topic}.jsonl"
    docs_file.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    try:
        n = str(len(rows))
        collector = _spawn("collect", "--bootstrap", bs, "--topic", collect_topic, "--expected", n)
        assert collector.stdout is not None
        if b"ready" not in collector.stdout.readline():
            raise RuntimeError("the collector did not start")
        offerer = _spawn(
            "offer",
            *("--bootstrap", bs, "--topic", offer_topic, "--rate", str(rate)),
            *("--docs", str(docs_file), "--tick-ms", str(tick_ms)),
        )
        offered = _last_json(offerer, seconds + 120)
        return offered, _last_json(collector, seconds + 240)
    finally:
        docs_file.unlink()


def lat_rows(docs: list[dict[str, Any]], n: int) -> list[Any]:
    return [[f"lat-{i}", {**docs[i % len(docs)], "application_id": f"lat-{i}"}] for i in range(n)]


def median_latency(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-quantile medians over the runs (each run's own numbers kept under ``runs``)."""

    def med(path: tuple[str, ...]) -> float:
        values = []
        for r in runs:
            v: Any = r
            for k in path:
                v = v[k]
            values.append(v)
        return round(statistics.median(values), 2)

    first = runs[0]
    return {
        "offered_per_s": first["offered_per_s"],
        "achieved_offer_per_s": med(("achieved_offer_per_s",)),
        "events": first["events"],
        "decided_ms": {q: med(("decided_ms", q)) for q in first["decided_ms"]},
        "received_ms": {q: med(("received_ms", q)) for q in first["received_ms"]},
        "stage_ms": {s: {q: med(("stage_ms", s, q)) for q in qs} for s, qs in first["stage_ms"].items()},
        # where measured events went missing, summed over the runs (0 everywhere = nothing lost)
        "missing": {
            "collected": sum(r["events"] - r["decisions"] for r in runs),
            "not_on_applications_topic": sum(
                r["events"] - r["on_topic"]["applications_on_topic"] for r in runs
            ),
            "on_topic_undecided": sum(r["on_topic"]["undecided"] for r in runs),
            "acked_anomalies": sum(len(r["on_topic"].get("acked_anomalies", ())) for r in runs),
        },
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=("offer", "collect"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--docs", type=Path, help="offer: JSON lines [key, document]")
    parser.add_argument("--expected", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--tick-ms", type=float, default=TICK_S * 1000, help="offer: send every N ms")
    parser.add_argument("--prefix", default="lat-", help="collect: keys of the measured decisions")
    args = parser.parse_args(argv)
    if args.role == "offer":
        lines = args.docs.read_bytes().splitlines()
        records = [(k.encode(), orjson.dumps(doc)) for k, doc in map(orjson.loads, lines)]
        _emit(asyncio.run(offer(args.bootstrap, args.topic, records, args.rate, args.tick_ms / 1000)))
    else:
        _emit(
            asyncio.run(
                collect(args.bootstrap, args.topic, args.expected, args.timeout, args.prefix.encode())
            )
        )


if __name__ == "__main__":
    main()
