"""The worker's sink: publish a batch's decisions and dead letters, return once the broker acknowledged
every record (transient broker faults retried with backoff until the worker stops)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka.errors import KafkaError

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.retry import Backoff, retry_transient
from credit_scorer.settings import Settings
from kafka_io.records import PartitionBatch, Record
from kafka_io.sender import RecordPublisher


class DecisionSink:
    """Producer created in :meth:`start` (``producer_factory``: an aiokafka producer in production)."""

    def __init__(
        self,
        settings: Settings,
        metrics: ScorerMetrics,
        producer_factory: Callable[[], Any],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.stopping = asyncio.Event()  # set on shutdown: retries give up (StoppedError)
        self._producer_factory = producer_factory
        self._producer: Any = None
        self._publisher: RecordPublisher | None = None
        stream = settings.stream
        self._backoff = Backoff(stream.retry_initial_s, stream.retry_max_s)

    async def start(self) -> None:
        self._producer = self._producer_factory()
        await self._producer.start()
        self._publisher = RecordPublisher(self._producer)

    async def stop(self) -> None:
        producer, self._producer, self._publisher = self._producer, None, None
        if producer is not None:
            await producer.stop()

    async def publish(
        self,
        decisions: list[Record],
        dead: list[Record],
        reviews: Sequence[Record] = (),
        shadow: Sequence[Record] = (),
    ) -> None:
        """Decisions (key = application id), dead letters, the REFER decisions again on the review
        topic (the same records: a reviewer's queue) and the challenger's decisions on the shadow topic
        (never on the review topic); returns when every one is acknowledged (raises StoppedError if the
        worker stops first)."""
        publisher = self._publisher
        assert publisher is not None, "sink not started"
        kafka = self.settings.kafka

        async def plan() -> list[PartitionBatch]:
            return [
                *await publisher.plan(kafka.decisions_topic, decisions),
                *await publisher.plan(kafka.dead_letter_topic, dead),
                *await publisher.plan(kafka.review_topic, reviews),
                *(await publisher.plan(kafka.shadow_topic, shadow) if shadow else ()),
            ]

        pending = await self._retry(plan, (KafkaError,))

        async def send() -> None:
            nonlocal pending
            pending = await publisher.send_groups(pending)
            if pending:
                raise _PublishIncomplete(f"{len(pending)} partition batch(es) not acknowledged")

        await self._retry(send, (_PublishIncomplete, KafkaError))

    async def _retry(self, call: Any, transient: tuple[type[BaseException], ...]) -> Any:
        return await retry_transient(
            call,
            dependency="kafka",
            transient=transient,
            backoff=self._backoff,
            metrics=self.metrics,
            stopping=self.stopping,
        )


class _PublishIncomplete(Exception):
    """Some partition batches were not acknowledged (retried)."""
