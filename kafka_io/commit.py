"""Commit consumer offsets after the work they cover is done — the worker's and the store sink's.

Only the partitions still assigned are committed (a revoked one's new owner restarts from its last
commit: duplicates, never a loss); a commit the group refuses after a rebalance is abandoned the same way;
other broker faults are retried with backoff, at most 3 times once the process is stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, RebalanceInProgressError

from credit_scorer.retry import Backoff

log = logging.getLogger(__name__)


async def commit_assigned(
    consumer: AIOKafkaConsumer,
    offsets: dict[TopicPartition, int],
    *,
    backoff: Backoff,
    stopping: asyncio.Event,
    on_retry: Callable[[], None],
) -> None:
    """Commit ``offsets`` of the partitions ``consumer`` still owns (see the module docstring);
    ``on_retry`` is called before each retry (the caller's retry metric)."""
    attempt = 0
    while True:
        current = {tp: off for tp, off in offsets.items() if tp in consumer.assignment()}
        if not current:
            return
        try:
            await consumer.commit(current)
            return
        except (CommitFailedError, RebalanceInProgressError, IllegalStateError) as exc:
            log.warning("commit abandoned after a rebalance (%s); the batch may be redelivered", exc)
            return
        except KafkaError as exc:
            attempt += 1
            on_retry()
            log.warning("commit failed (%s); retry %d", exc, attempt)
            if stopping.is_set() and attempt >= 3:
                return
            await asyncio.sleep(backoff.delay(attempt))
