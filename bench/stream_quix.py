"""The peer of the stream benchmark: the same pipeline written with quix-streams, the way a Python user
would pick it instead of this project's worker.

A quix-streams ``Application`` (confluent-kafka underneath) with one ``StreamingDataFrame``: parse the
application, read its client's vector from Redis, ``decide`` with the same model (reasons on a REFUS),
encode the same Decision JSON, ``to_topic`` the decisions topic keyed by application id. A
StreamingDataFrame calls its functions one record at a time (quix-streams 3.x has no micro-batch
operator), so the Redis read is one ``GET`` per record, on a synchronous client (the DataFrame's
functions are synchronous). Commits: quix's own (every 5 s, at-least-once). Run as a child process by
``bench.bench_stream`` (``--engines …,quix``):

    uv run --with quixstreams==3.28.1 python -m bench.stream_quix   (settings from CREDIT_SCORER_…)

quix-streams is not in the project's lock: quixstreams 3.28.1's bounds make uv resolve pydantic 2.13.5
and pydantic-settings 2.15.0 for the whole project (2.14.3 / 2.16.3 today), so the bench brings it in
with ``uv run --with`` (an overlay environment for the benchmark process only).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np

from credit_scorer.settings import get_settings
from feature_cache.keys import vector_key
from feature_cache.store import create_sync_redis_client
from schemas.codec import encode_decision, parse_application
from schemas.exceptions import InvalidEvent
from scoring.decide import DecideOptions, decide
from scoring.decision import StageTimings, build_decision
from scoring.features import CachedFeatures
from stream_app.worker import load_worker_model


def main() -> None:
    from quixstreams import Application

    settings = get_settings()
    kafka, stream = settings.kafka, settings.stream
    model = load_worker_model(settings)
    version, n_features = model.feature_version, len(model.schema)
    redis = create_sync_redis_client(settings.redis)
    prefix = settings.redis.key_prefix
    options = DecideOptions(top_reasons=stream.top_reasons)
    app = Application(
        broker_address=kafka.bootstrap_servers,
        consumer_group=kafka.consumer_group,
        auto_offset_reset="earliest",
        auto_create_topics=False,
        use_changelog_topics=False,
        state_dir=tempfile.mkdtemp(prefix="bench-quix-state-"),  # stateless here; never in the tree
    )
    applications = app.topic(kafka.applications_topic, value_deserializer="bytes")
    decisions = app.topic(kafka.decisions_topic, value_serializer="bytes", key_serializer="bytes")
    # quix keeps each record's key through the DataFrame: the producers key applications by their id

    def score(raw: bytes, key: Any, timestamp: int, headers: Any) -> bytes | None:
        consumed_at = time.time()
        try:
            application = parse_application(raw, stream.max_payload_bytes, record_time=timestamp / 1000)
        except InvalidEvent:
            return None
        t0 = time.perf_counter()
        value = redis.get(vector_key(prefix, version, application.sk_id_curr))
        features_s = time.perf_counter() - t0
        row = np.full((1, n_features), np.nan, dtype=np.float32)
        if value is not None:
            row[0] = np.frombuffer(value, dtype="<f4")  # type: ignore[arg-type]
        cached = CachedFeatures(row, np.array([value is not None]), version, None)
        result = decide(model, [application], cached, options=options).score
        timings = StageTimings(consumed_at, features_s, result.inference_s, result.reasons_s)
        return encode_decision(build_decision(application, result.results[0], timings))

    sdf = app.dataframe(applications)
    sdf = sdf.apply(score, metadata=True).filter(lambda value: value is not None)  # invalid: skipped
    # quix gives an output record its input's timestamp; the bench times decisions by theirs (the
    # worker's producer stamps the send time): stamp the decision when it is made, like the worker
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: int(time.time() * 1000))
    sdf.to_topic(decisions)  # keyed by the record's own key: the application id, as the worker does
    app.run()  # SIGTERM/SIGINT stop it (quix installs the handlers)


if __name__ == "__main__":
    main()
