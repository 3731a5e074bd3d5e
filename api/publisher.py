"""POST /applications → the applications topic, POST /reviews → the decisions topic: one aiokafka
producer per app, started on first use.

The producer is created lazily (the REST API must serve /predict without a broker) under a lock, so
concurrent first requests share one; a failed start leaves nothing behind and the next request
retries. Every broker fault or timeout becomes :class:`BrokerUnavailableError` (HTTP 503).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from api.exceptions import BrokerUnavailableError
from credit_scorer.settings import KafkaSettings
from schemas.codec import encode_application, encode_decision
from schemas.events import Decision, LoanApplication

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int


class ApplicationPublisher:
    def __init__(self, kafka: KafkaSettings, timeout_s: float) -> None:
        self.kafka = kafka
        self.topic = kafka.applications_topic
        self.timeout_s = timeout_s
        self._producer: Any = None
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def _ensure_started(self) -> Any:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            from aiokafka import AIOKafkaProducer

            from kafka_io.config import producer_kwargs

            kwargs = producer_kwargs(self.kafka)
            kwargs["request_timeout_ms"] = min(kwargs["request_timeout_ms"], int(self.timeout_s * 1000))
            producer = AIOKafkaProducer(**kwargs)
            try:
                await asyncio.wait_for(producer.start(), self.timeout_s)
            except BaseException as exc:
                await _stop_quietly(producer)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise BrokerUnavailableError(
                    f"Kafka broker at {self.kafka.bootstrap_servers} is unreachable: {_describe(exc)}"
                ) from exc
            self._producer = producer
            return producer

    async def publish(self, application: LoanApplication) -> Published:
        """Send ``application`` (key = application id) and wait for the broker's acknowledgement."""
        key = application.key.encode()
        return await self._send(self.topic, key, encode_application(application), "the application")

    async def publish_decision(self, decision: Decision) -> Published:
        """Send a decision (a reviewer's verdict) to the decisions topic, key = application id."""
        topic, key = self.kafka.decisions_topic, decision.application_id.encode()
        return await self._send(topic, key, encode_decision(decision), "the decision")

    async def _send(self, topic: str, key: bytes, value: bytes, what: str) -> Published:
        producer = await self._ensure_started()
        try:
            meta = await asyncio.wait_for(producer.send_and_wait(topic, value, key=key), self.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise BrokerUnavailableError(
                f"Kafka broker at {self.kafka.bootstrap_servers} did not accept {what} on "
                f"{topic}: {_describe(exc)}"
            ) from exc
        return Published(meta.topic, meta.partition, meta.offset)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer)


async def _stop_quietly(producer: Any) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5.0)
    except Exception as exc:  # shutting down: nothing more to do than say it
        log.warning("stopping the Kafka producer failed: %s", _describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
