"""POST /predict's decisions → the decisions topic, so the decision store keeps them too.

Fire and forget: the answer never waits for the broker (a /predict client cannot be made to wait on
Kafka), each decision is sent in the background with the same producer settings as every client. When
the broker is away, sends are skipped for ``pause_s`` after a failure (one warning each time), so an
API without a broker neither piles up tasks nor floods its log. The record is the stream worker's
Decision document (:func:`scoring.decision.decision_bytes`) with a fresh application id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from credit_scorer.settings import KafkaSettings
from schemas.events import LoanApplication
from scoring.decision import StageTimings, decision_bytes
from scoring.results import ScoreResult

log = logging.getLogger(__name__)

MAX_PENDING = 10_000


class DecisionLog:
    def __init__(self, kafka: KafkaSettings, timeout_s: float, pause_s: float = 10.0) -> None:
        self.kafka = kafka
        self.timeout_s = timeout_s
        self.pause_s = pause_s
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    def record(
        self, sk_id_curr: int, fields: dict[str, object], result: ScoreResult, timings: StageTimings
    ) -> str:
        """Build the decision record now, send it in the background; returns its application id."""
        application = LoanApplication.model_validate({**fields, "sk_id_curr": sk_id_curr})
        payload = decision_bytes(application, result, timings)
        if time.monotonic() >= self._paused_until and len(self._pending) < MAX_PENDING:
            task = asyncio.get_running_loop().create_task(self._send(application.key.encode(), payload))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return application.key

    async def _send(self, key: bytes, value: bytes) -> None:
        try:
            producer = await self._ensure_started()
            await asyncio.wait_for(
                producer.send_and_wait(self.kafka.decisions_topic, value, key=key), self.timeout_s
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._paused_until = time.monotonic() + self.pause_s
            log.warning(
                "decision %s not published to %s (%s); the store will not have it; pausing %.0f s",
                key.decode(),
                self.kafka.decisions_topic,
                f"{type(exc).__name__}: {exc}",
                self.pause_s,
            )

    async def _ensure_started(self) -> Any:
        async with self._lock:
            if self._producer is None:
                from aiokafka import AIOKafkaProducer

                from kafka_io.config import producer_kwargs

                producer = AIOKafkaProducer(**producer_kwargs(self.kafka))
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_s)
                except BaseException:
                    await asyncio.shield(_stop(producer))
                    raise
                self._producer = producer
            return self._producer

    async def stop(self) -> None:
        """Let in-flight sends finish (bounded by the send timeout), then stop the producer."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=self.timeout_s)
        for task in list(self._pending):
            task.cancel()
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop(producer)


async def _stop(producer: Any) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5.0)
    except Exception as exc:
        log.warning("stopping the decisions producer failed: %s", exc)
