"""Per-decision CPU of the worker's per-batch path, stage by stage, in one process (no broker, no Redis).

    uv run python -m bench.bench_batch_path [--events 20000] [--batch 500] [--repeats 5] [--profile]

The worker's :class:`stream_app.engine.MicroBatchPipeline` with the model, policy and reason codes it
serves (the bench model of :mod:`bench.bench_stream`, ``prepare_with_policy`` on the default settings),
its drift and fairness observers, on whole application forms from the real sample
(:func:`bench.stream_forms.form_payloads`) in batches of ``--batch``; the feature cache is the real
feature table held in memory (the Redis round trip is measured by ``bench_redis_cache``) and the sink
drops what it is given (publishing is the broker's cost, measured by ``bench_stream``).

As in the worker, freed heap stays in the process (``keep_freed_memory``) and the start-up heap is
frozen out of the cyclic collector (``settle_heap``; ``--no-settle`` keeps the collector's defaults).
Per stage, CPU µs per decision (process time; median over ``--repeats`` passes of every batch):
parse, features (in-memory), assembly + forest + policy (``inference``), reason codes (TreeSHAP and the
code objects), counter-offers, the ScoreResults, decision encoding, metrics, each observer; and the
whole ``prepare`` + ``deliver`` of the pipeline, timed on its own. ``--profile`` prints the top of a
cProfile of the whole path. Writes bench/results/batch_path.json (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import platform
import pstats
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from credit_scorer.settings import PROJECT_ROOT, Settings

RESULTS = Path(__file__).resolve().parent / "results" / "batch_path.json"


class MemoryFeatures:
    """The feature table in memory, behind the worker's FeatureSource interface."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray, version: str) -> None:
        self.feature_version = version
        self._row = {int(i): k for k, i in enumerate(ids.tolist())}
        self._matrix = np.vstack([matrix, np.full((1, matrix.shape[1]), np.nan, dtype=np.float32)])
        self.loaded_at = time.time()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def fetch(self, sk_ids: Sequence[int], *, stopping: asyncio.Event | None = None) -> Any:
        from scoring.features import CachedFeatures

        missing = len(self._matrix) - 1
        idx = np.array([self._row.get(i, missing) for i in sk_ids], dtype=np.int64)
        return CachedFeatures(self._matrix[idx], idx != missing, self.feature_version, self.loaded_at)


class DropSink:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, decisions: Any, dead: Any, reviews: Any = (), shadow: Any = ()) -> None:
        return None


def build(settings: Settings, model_dir: Path) -> tuple[Any, MemoryFeatures]:
    from credit_scorer.metrics import ScorerMetrics
    from feature_cache.loader import read_feature_table
    from scoring.model import load_model
    from scoring.policy_file import prepare_with_policy
    from stream_app.drift_observer import drift_observers
    from stream_app.engine import MicroBatchPipeline
    from stream_app.fairness_observer import fairness_observers

    model = prepare_with_policy(load_model(model_dir), settings.policy.path, settings.policy.reason_codes)
    ids, matrix = read_feature_table(PROJECT_ROOT / "var" / "features" / "features.parquet", model.schema)
    features = MemoryFeatures(ids, matrix, model.feature_version)
    metrics = ScorerMetrics()
    observers: list[Any] = [
        *drift_observers(settings.drift, model, metrics),
        *fairness_observers(settings.fairness, model, metrics),
    ]
    pipeline = MicroBatchPipeline(settings, model, features, metrics, sink=DropSink(), observers=observers)
    return pipeline, features


def records(payloads: list[tuple[bytes | None, bytes]], batch: int) -> list[list[Any]]:
    from kafka_io.records import InboundRecord

    stamp = int(time.time() * 1000)
    recs = [InboundRecord("apps", 0, i, k, v, stamp + i // 100) for i, (k, v) in enumerate(payloads)]
    return [recs[i : i + batch] for i in range(0, len(recs), batch)]


def staged(pipeline: Any, batch: Sequence[Any]) -> dict[str, float]:
    """One batch through the pipeline's steps, each timed in process CPU seconds."""
    from schemas.codec import parse_application
    from schemas.exceptions import InvalidEvent
    from scoring.decide import DecideOptions, decide
    from scoring.decision import StageTimings, decision_batch_bytes
    from stream_app.batch_metrics import observe_batch, observe_scoring

    clock = time.process_time
    t: dict[str, float] = {}
    t0 = clock()
    max_bytes = pipeline.settings.stream.max_payload_bytes
    apps = []
    for rec in batch:
        with contextlib.suppress(InvalidEvent):  # dead letters: none in the sample
            apps.append(parse_application(rec.value, max_bytes, record_time=rec.timestamp_ms / 1000))
    t1 = clock()
    cached = asyncio.run(pipeline.features.fetch([a.sk_id_curr for a in apps]))
    t2 = clock()
    stream = pipeline.settings.stream
    options = DecideOptions(
        pipeline.reasons,
        stream.top_reasons,
        attribution=stream.attribution,
        counter_offers=stream.counter_offers,
    )
    score = decide(pipeline.model, apps, cached, options=options).score
    t3 = clock()
    timings = StageTimings(time.time(), t2 - t1, score.inference_s, score.reasons_s)
    decision_batch_bytes(apps, score.results, timings)
    t4 = clock()
    observe_scoring(pipeline.metrics, pipeline.model.model_version, cached, t2 - t1, score)
    observe_batch(
        pipeline.metrics,
        batch,
        [r.timestamp_ms / 1000 for r in batch],
        time.time(),
        time.time(),
        0.0,
        {},
        len(apps),
    )
    t5 = clock()
    t["parse"], t["features_in_memory"] = t1 - t0, t2 - t1
    # decide()'s own wall split (one thread: wall ≈ CPU); the remainder is building the ScoreResults
    t["inference"], t["reason_codes"], t["counter_offers"] = (
        score.inference_s,
        score.reasons_s,
        score.offers_s,
    )
    t["results"] = max(0.0, (t3 - t2) - score.inference_s - score.reasons_s - score.offers_s)
    t["encode"], t["metrics"] = t4 - t3, t5 - t4
    for obs in pipeline.observers:
        s = clock()
        obs(score)
        t[f"observer_{type(obs).__name__}"] = clock() - s
    return t


def whole(pipeline: Any, batches: list[list[Any]]) -> float:
    """CPU seconds of prepare + deliver over every batch (the worker's path, scoring inline)."""

    async def run() -> None:
        for b in batches:
            await pipeline.deliver(await pipeline.prepare(b))

    t0 = time.process_time()
    asyncio.run(run())
    return time.process_time() - t0


def per_decision_us(pipeline: Any, batches: list[list[Any]], repeats: int) -> tuple[dict[str, float], float]:
    n = sum(len(b) for b in batches)
    stage_runs: list[dict[str, float]] = []
    whole_runs: list[float] = []
    for _ in range(repeats):  # interleaved, so a load change on the shared machine hits both
        total: dict[str, float] = {}
        for b in batches:
            for k, v in staged(pipeline, b).items():
                total[k] = total.get(k, 0.0) + v
        stage_runs.append(total)
        whole_runs.append(whole(pipeline, batches))
    stages = {k: round(statistics.median(r[k] for r in stage_runs) / n * 1e6, 2) for k in stage_runs[0]}
    return stages, round(statistics.median(whole_runs) / n * 1e6, 2)


def profile(fn: Callable[[], object], top: int = 40) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    from bench.bench_stream import bench_model
    from bench.stream_forms import form_payloads

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the whole path")
    parser.add_argument(
        "--no-settle", action="store_true", help="keep the collector's defaults (no settle_heap)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--baseline", type=Path, help="results of another build, run alternately: shown side by side"
    )
    args = parser.parse_args(argv)

    from credit_scorer.memory import keep_freed_memory, settle_heap

    keep_freed_memory()  # as the worker
    settings = Settings()
    model_dir = bench_model(args.model)
    pipeline, _ = build(settings, model_dir)
    payloads = form_payloads(settings.paths.raw_dir, args.events, "full")
    if payloads is None:
        raise SystemExit(f"no application_test.csv.gz in {settings.paths.raw_dir}")
    batches = records(payloads, args.batch)
    if not args.no_settle:
        settle_heap()  # as the worker, once started
    whole(pipeline, batches[:4])  # warm-up (numba, caches)
    if args.profile:
        profile(lambda: whole(pipeline, batches))
        return
    stages, whole_us = per_decision_us(pipeline, batches, args.repeats)
    base = json.loads(args.baseline.read_text()) if args.baseline else None
    before = base["us_per_decision"] if base else {}
    print(f"{'stage':<32}{'µs/decision':>12}" + (f"{'baseline':>12}" if base else ""))
    for k, v in stages.items():
        print(f"{k:<32}{v:>12.2f}" + (f"{before.get(k, float('nan')):>12.2f}" if base else ""))
    print(f"{'sum of stages':<32}{sum(stages.values()):>12.2f}")
    print(f"{'whole prepare+deliver':<32}{whole_us:>12.2f}  ({1e6 / whole_us:,.0f} decisions per CPU-s)")
    if base:
        old = base["whole_us_per_decision"]
        print(f"baseline whole: {old:.2f} µs per decision; this build x{old / whole_us:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "batch_path",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "model": str(model_dir.name),
                "args": vars(args) | {"model": str(model_dir), "out": str(args.out)},
                "us_per_decision": stages,
                "whole_us_per_decision": whole_us,
                "baseline": base
                and {
                    "args": base["args"],
                    "us_per_decision": before,
                    "whole_us_per_decision": base["whole_us_per_decision"],
                    "whole_ratio": round(base["whole_us_per_decision"] / whole_us, 2),
                },
                "measured_at": datetime.now(UTC).isoformat(),
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
