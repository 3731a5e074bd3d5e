"""Benchmark of the decision store: ingest rate (decisions/s) SQLite vs PostgreSQL side by side, and
lookup latency through the API.

    uv run python -m bench.bench_store [--decisions 20000] [--rounds 2] [--lookups 2000] [--quick]

Ingest: a real Tansu broker holds ``--decisions`` decision records (realistic documents: reasons,
latency, versions); a real ``credit-scorer store sink`` process consumes them into a fresh SQLite file
(var/bench/) or a fresh PostgreSQL database (``BENCH_POSTGRES_URL``, default
postgresql://postgres@127.0.0.1:5432/test's server; dropped after). Rate = decisions stored between the
first stored one and the last / that time (process start-up and the group join excluded), rounds
interleaved SQLite, PostgreSQL, SQLite, … so both see the same machine load; medians reported.

Lookups: a real ``credit-scorer api serve`` process on each filled store; one keep-alive connection,
random ids: GET /decisions/{application_id} and GET /clients/{sk_id_curr}/decisions?limit=20;
p50/p99 per route. Writes bench/results/store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from credit_scorer.settings import PROJECT_ROOT, Settings
from decision_store.store import DecisionStore
from devtools.harness import KafkaTopics, StoreSinkProcess, create_topics, produce_payloads, settings_for
from devtools.launchers import TansuBroker
from devtools.services import ApiProcess

RESULTS = Path(__file__).resolve().parent / "results" / "store.json"
BENCH_DIR = PROJECT_ROOT / "var" / "bench" / "store"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLIENTS = 5000


def documents(n: int) -> list[tuple[bytes, bytes]]:
    """``n`` decision records shaped like the worker's (3 reasons, latency, versions)."""
    now = datetime.now(UTC).isoformat()
    rng = random.Random(7)
    out = []
    for i in range(n):
        p = rng.random()
        doc = {
            "schema_version": 1, "application_id": f"bench-{i}", "event_id": uuid.uuid4().hex,
            "sk_id_curr": 100000 + i % CLIENTS, "decision": "REFUS" if p >= 0.5 else "ACCORD",
            "probability_default": p, "score": p, "threshold": 0.5, "model_version": "bench-model",
            "feature_version": "bench-features", "features_found": True, "features_age_s": 12.5,
            "reasons": [{"feature": f"FEATURE_{k}", "value": rng.random(), "contribution": rng.random()}
                        for k in range(3)],
            "latency": {"queue_s": 0.001, "features_s": 0.0004, "inference_s": 0.0009, "reasons_s": 0.0003,
                        "produce_s": None, "total_s": 0.003},
            "event_time": now, "consumed_at": now, "decided_at": now, "is_replay": False,
        }  # fmt: skip
        out.append((f"bench-{i}".encode(), orjson.dumps(doc)))
    return out


def new_postgres_database() -> tuple[str, str]:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"cs_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(POSTGRES_URL).set(database=name, drivername="postgresql+psycopg")
    return name, url.render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ingest(bootstrap: str, topics: KafkaTopics, url: str, n: int, log: Path) -> dict[str, float]:
    """Run a sink on a fresh group over the filled topic until ``n`` are stored; the rate in between."""
    base = settings_for(bootstrap, topics)
    group = f"bench-store-{uuid.uuid4().hex[:8]}"
    store_cfg = base.store.model_copy(update={"url": url, "consumer_group": group, "metrics_port": 0})
    settings = base.model_copy(update={"store": store_cfg})
    store = DecisionStore.from_url(url)
    sink = StoreSinkProcess(settings, log_path=log).start()
    first_at: float | None = None
    first_count = 0
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                count = store.count()
            except Exception:  # the sink has not migrated yet
                count = 0
            now = time.monotonic()
            if count and first_at is None:
                first_at, first_count = now, count
            if count >= n:
                assert first_at is not None
                seconds = now - first_at
                rate = round((count - first_count) / seconds, 1) if seconds else 0.0
                return {"stored": count, "seconds": round(seconds, 3), "decisions_per_s": rate}
            time.sleep(0.02)
        raise RuntimeError(f"only {count} of {n} stored after 600 s; see {log}")
    finally:
        sink.terminate()
        store.close()


def lookups(url: str, n_docs: int, n: int, log: Path) -> dict[str, Any]:
    base = Settings()
    settings = base.model_copy(update={"store": base.store.model_copy(update={"url": url})})
    rng = random.Random(11)
    out: dict[str, Any] = {}
    with ApiProcess(settings, log_path=log) as api:
        api.start()
        clients = min(CLIENTS, n_docs)
        routes = {
            "GET /decisions/{application_id}": lambda: f"/decisions/bench-{rng.randrange(n_docs)}",
            "GET /clients/{sk_id_curr}/decisions": lambda: (
                f"/clients/{100000 + rng.randrange(clients)}/decisions?limit=20"
            ),
        }
        with httpx.Client(base_url=api.url, timeout=10) as client:
            for route, path in routes.items():
                for _ in range(50):  # warm-up: connection, engine pool, caches
                    client.get(path())
                times = []
                for _ in range(n):
                    p = path()
                    t0 = time.perf_counter()
                    response = client.get(p)
                    times.append(time.perf_counter() - t0)
                    assert response.status_code == 200, (p, response.status_code, response.text[:200])
                times.sort()
                out[route] = {
                    "requests": n,
                    "p50_ms": round(1000 * times[len(times) // 2], 3),
                    "p99_ms": round(1000 * times[int(len(times) * 0.99) - 1], 3),
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="3,000 decisions, 1 round, 300 lookups")
    args = parser.parse_args()
    if args.quick:
        args.decisions, args.rounds, args.lookups = 3000, 1, 300
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    records = documents(args.decisions)
    rounds: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    latency: dict[str, Any] = {}
    created: list[str] = []
    with TansuBroker(log_path=BENCH_DIR / "tansu.log") as broker:
        topics = KafkaTopics("bench-apps", "bench-decisions", "bench-dlq", "bench", 4)
        asyncio.run(create_topics(broker.bootstrap_servers, [topics.decisions], 4))
        asyncio.run(produce_payloads(broker.bootstrap_servers, topics.decisions, records))
        urls: dict[str, str] = {}
        try:
            for r in range(args.rounds):
                for kind in ("sqlite", "postgresql"):
                    if kind == "sqlite":
                        path = BENCH_DIR / f"decisions-{r}.sqlite3"
                        for old in BENCH_DIR.glob(f"{path.name}*"):
                            old.unlink()
                        url = f"sqlite:///{path}"
                    else:
                        name, url = new_postgres_database()
                        created.append(name)
                    result = ingest(
                        broker.bootstrap_servers, topics, url, args.decisions, BENCH_DIR / "sink.log"
                    )
                    print(f"round {r} {kind}: {result}", flush=True)
                    rounds[kind].append(result)
                    urls[kind] = url
            for kind, url in urls.items():
                latency[kind] = lookups(url, args.decisions, args.lookups, BENCH_DIR / "api.log")
                print(f"lookups {kind}: {latency[kind]}", flush=True)
        finally:
            for name in created:
                drop_postgres_database(name)
    medians = {k: statistics.median(r["decisions_per_s"] for r in v) for k, v in rounds.items()}
    results = {
        "benchmark": "store",
        "command": "uv run python -m bench.bench_store" + (" --quick" if args.quick else ""),
        "decisions": args.decisions,
        "ingest_rounds": rounds,
        "ingest_median_decisions_per_s": medians,
        "ingest_ratio_sqlite_over_postgresql": round(medians["sqlite"] / medians["postgresql"], 2),
        "lookup_through_api": latency,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_1m_at_end": os.getloadavg()[0]},
    }  # fmt: skip
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
