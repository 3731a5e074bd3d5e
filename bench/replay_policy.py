"""A replay report of the decision policy: outcomes (ACCORD / REFUS / REFER) and rule hits per model.

    uv run python -m bench.replay_policy [--live DIR] [--replay DIR] [--events N]

History: the real sample's application_test rows (whole forms, as the producer sends them) in a
4-partition applications topic, and the live decision of each in the decisions topic, made by the
decision use case with the live model and the committed policy (as the worker makes them). Client
features: the real sample's feature build (var/features) in a real redis-server. Then replay
(:class:`replay.parallel.ParallelReplayer`) rescores the history with another model under the same
policy and writes its report (:mod:`replay.report`). Models: ``--live`` (default: the stream
benchmark's 500-tree model) and ``--replay`` (default: a 100-tree model trained once on var/features
into var/bench/policy-replay-model). Writes bench/results/replay_policy/ (report.md, summary.json, plots).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_replay import PARTITIONS, PREFIX, bench_settings, fill_topics
from credit_scorer.settings import PROJECT_ROOT, Settings

OUT = Path(__file__).resolve().parent / "results" / "replay_policy"
FEATURES = PROJECT_ROOT / "var" / "features"
REPLAY_MODEL = PROJECT_ROOT / "var" / "bench" / "policy-replay-model"


def replay_model(explicit: Path | None) -> Path:
    from scoring.model import resolve_model_dir

    if explicit is not None:
        return resolve_model_dir(PROJECT_ROOT, explicit)
    if REPLAY_MODEL.is_dir() and any(REPLAY_MODEL.iterdir()):
        return resolve_model_dir(REPLAY_MODEL)
    from training.train import TrainConfig, train_model

    print("training a 100-tree replay model on var/features (once) …", flush=True)
    cfg = TrainConfig(folds=2, max_rounds=100, early_stopping=0, plots=False, params={"learning_rate": 0.1})
    return train_model(FEATURES, REPLAY_MODEL, cfg).model_dir


def live_history(
    model: Any, payloads: list[tuple[bytes, bytes]], redis_url: str
) -> list[tuple[bytes, bytes]]:
    """The live decision of every application, by the decision use case on the cached features."""
    from credit_scorer.retry import Backoff
    from feature_cache.source import RedisFeatureSource
    from schemas.codec import parse_application
    from scoring.decide import DecideOptions, decide
    from scoring.decision import StageTimings, decision_batch_bytes

    settings = Settings()
    redis = settings.redis.model_copy(update={"url": redis_url, "key_prefix": PREFIX})

    async def go() -> list[tuple[bytes, bytes]]:
        source = RedisFeatureSource(redis, model.feature_version, Backoff(0.1, 1.0))
        await source.start()
        out: list[tuple[bytes, bytes]] = []
        try:
            for lo in range(0, len(payloads), 500):  # the worker's micro-batch size
                apps = [parse_application(v, 1 << 16) for _, v in payloads[lo : lo + 500]]
                cached = await source.fetch([a.sk_id_curr for a in apps])
                score = decide(model, apps, cached, options=DecideOptions("refusals")).score
                timings = StageTimings(time.time(), 0.0, score.inference_s, score.reasons_s)
                encoded = decision_batch_bytes(apps, score.results, timings)
                out += [(a.key.encode(), v) for a, v in zip(apps, encoded, strict=True)]
        finally:
            await source.stop()
        return out

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> None:
    from bench.bench_stream import bench_model
    from bench.stream_forms import form_payloads
    from devtools.harness import load_cache
    from devtools.launchers import RedisServer, TansuBroker
    from replay.parallel import ParallelReplayer
    from replay.report import build_report
    from replay.runner import ReplayOptions
    from scoring.model import load_model
    from scoring.policy_file import prepare_with_policy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--live", type=Path, default=None)
    ap.add_argument("--replay", type=Path, default=None)
    ap.add_argument("--events", type=int, default=48_744, help="application_test rows (all by default)")
    args = ap.parse_args(argv)
    policy = Settings().policy
    live_model, new_model = (
        prepare_with_policy(load_model(d), policy.path, policy.reason_codes)
        for d in (bench_model(args.live), replay_model(args.replay))
    )
    payloads = form_payloads(Settings().paths.raw_dir, args.events, "full")
    if payloads is None:
        raise SystemExit("error: the real sample's application_test file is needed")
    work = Path(tempfile.mkdtemp(prefix="replay-policy-"))
    with RedisServer() as redis_server:
        broker = TansuBroker(log_path=work / "tansu.log").start()
        try:
            load_cache(redis_server.url, PREFIX, FEATURES)
            settings = bench_settings(broker.bootstrap_servers, redis_server.url)
            asyncio.run(
                fill_topics(settings.kafka, payloads, live_history(live_model, payloads, redis_server.url))
            )
            shutil.rmtree(OUT, ignore_errors=True)
            options = ReplayOptions(out_dir=OUT, publish=False, checkpoint_every_s=1e9, workers=0)
            result = asyncio.run(ParallelReplayer(settings, new_model, options).run())
            comparison = build_report(OUT)
            for bulky in ("rows.parquet", "checkpoint.json"):  # the report and its summary are kept
                (OUT / bulky).unlink(missing_ok=True)
            shutil.rmtree(OUT / "rows", ignore_errors=True)
        finally:
            broker.stop()
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"replayed {result.rescored:,} applications: {live_model.model_version} → {new_model.model_version}"
    )
    for s in comparison.policy:
        print(f"  {s.side:6s} {s.model}: {s.outcomes} rule hits {s.rule_hits}")
    print(f"report: {OUT / 'report.md'} (partitions: {PARTITIONS})")


if __name__ == "__main__":
    main()
