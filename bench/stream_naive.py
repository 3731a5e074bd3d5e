"""The naive baseline of the stream benchmark: one event at a time, the obvious way.

Plain aiokafka: ``getone()``, one Redis ``GET`` of the client's vector, one ``decide`` call for
that single event (reasons on a REFUS), build + encode its decision, ``send_and_wait`` (await the
broker's ack) — then the next event. Offsets of processed events are committed once per second
(at-least-once, as the real worker). Run as a child process by ``bench.bench_stream``:

    python -m bench.stream_naive      (settings from CREDIT_SCORER_… like the real worker)
"""

from __future__ import annotations

import asyncio
import signal
import time

import numpy as np

from credit_scorer.settings import get_settings
from feature_cache.keys import vector_keys
from feature_cache.store import create_redis_client
from kafka_io.config import consumer_kwargs, producer_kwargs
from schemas.codec import encode_decision, parse_application
from schemas.exceptions import InvalidEvent
from scoring.decide import DecideOptions, decide
from scoring.decision import StageTimings, build_decision
from scoring.features import CachedFeatures
from stream_app.worker import load_worker_model


async def run() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    settings = get_settings()
    kafka, stream = settings.kafka, settings.stream
    model = load_worker_model(settings)
    version = model.feature_version
    n_features = len(model.schema)
    redis = create_redis_client(settings.redis)
    consumer = AIOKafkaConsumer(**consumer_kwargs(kafka, 1, stream.fetch_max_wait_ms))
    consumer.subscribe([kafka.applications_topic])
    producer = AIOKafkaProducer(**producer_kwargs(kafka))
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    done: dict[TopicPartition, int] = {}
    last_commit = time.monotonic()
    try:
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(consumer.getone(), timeout=0.2)
            except TimeoutError:
                continue
            consumed_at = time.time()
            try:
                app = parse_application(msg.value, stream.max_payload_bytes, record_time=msg.timestamp / 1000)
            except InvalidEvent:
                continue
            t0 = time.perf_counter()
            raw = await redis.get(vector_keys(settings.redis.key_prefix, version, [app.sk_id_curr])[0])
            features_s = time.perf_counter() - t0
            row = np.full((1, n_features), np.nan, dtype=np.float32)
            if raw is not None:
                row[0] = np.frombuffer(raw, dtype="<f4")
            cached = CachedFeatures(row, np.array([raw is not None]), version, None)
            options = DecideOptions(top_reasons=stream.top_reasons)
            score = decide(model, [app], cached, options=options).score
            timings = StageTimings(consumed_at, features_s, score.inference_s, score.reasons_s)
            value = encode_decision(build_decision(app, score.results[0], timings))
            await producer.send_and_wait(kafka.decisions_topic, value, key=app.key.encode())
            done[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
            if time.monotonic() - last_commit >= 1.0:
                await consumer.commit(dict(done))
                last_commit = time.monotonic()
    finally:
        if done:
            await consumer.commit(dict(done))
        await consumer.stop()
        await producer.stop()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(run())
