"""The worker's start-up (:func:`start_worker`): join the consumer group while the model loads.

A new group member waits for the broker's join delay before it gets partitions: Tansu 0.6 holds the
first JoinGroup of a group for half the session timeout (in 1 s steps, for other members to arrive;
measured: 3 s at the 6 s session of the tests and benchmarks, 15 s at a 30 s session; the default is 10
s), Apache Kafka for ``group.initial.rebalance.delay.ms`` (3 s by default). That wait needs nothing from
the model, and preparing the model (load, verify, compile the forest and TreeSHAP) needs nothing from
the broker, so :func:`load_while_joining` runs both at once: the consumer is started (the group joined)
on the event loop the Faust worker then runs, while the model is loaded on a thread. The started
consumer is handed to :class:`stream_app.source.KafkaSource`, which adopts it instead of starting its
own. The join starts before the heavy imports (numba, lightgbm, redis, faust: :mod:`stream_app.worker`),
which happen on the loading thread too.

Records are not polled before the worker runs: partitions assigned early only sit idle (at most the
model's preparation time) and the fetcher prefetches their first records meanwhile. A model that fails
to load leaves the group before the error goes up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from credit_scorer.settings import Settings
from kafka_io.config import consumer_kwargs

if TYPE_CHECKING:
    from scoring.prepared import PreparedModel

log = logging.getLogger(__name__)
T = TypeVar("T")


def start_worker(settings: Settings, engine: str | None = None) -> None:
    """The worker command: load the model and run the worker until signalled (blocks). The batch engine
    joins its consumer group meanwhile (the broker's join delay and the model's preparation overlap
    instead of adding up)."""
    from credit_scorer.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before the loading and scorer threads allocate
    engine = engine or settings.stream.engine
    if engine != "batch":
        from stream_app.worker import run_worker

        model, version = _load(settings)
        run_worker(settings, engine, model=model, registry_version=version)
        return
    (model, version), joined = load_while_joining(settings, lambda: _load(settings))
    from stream_app.worker import run_worker

    run_worker(settings, engine, model=model, registry_version=version, joined=joined)


def _load(settings: Settings) -> tuple[PreparedModel, str]:
    from credit_scorer.memory import (
        import_lightgbm_without_pandas,
        import_numba_without_coverage,
        import_redis_without_opentelemetry,
    )

    import_lightgbm_without_pandas()  # before anything imports them: less memory, a faster start
    import_redis_without_opentelemetry()
    import_numba_without_coverage()
    from stream_app.worker import load_worker_served  # the heavy imports, on the loading thread

    loaded = load_worker_served(settings)
    import stream_app.app  # noqa: F401  # faust too, before the worker needs it

    return loaded


class ForwardingListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """The consumer's rebalance listener, forwarding to whoever owns the consumer now (``target``: the
    source once it adopted the consumer; before that nothing is in flight, so there is nothing to do)."""

    def __init__(self) -> None:
        self.target: ConsumerRebalanceListener | None = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self.target is not None:
            await self.target.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if self.target is not None:
            await self.target.on_partitions_assigned(assigned)
        else:
            log.info("assigned partitions (model still loading): %s", sorted(tp.partition for tp in assigned))


class JoinedConsumer:
    """A started group consumer (subscribed to the applications topic) and its forwarding listener."""

    def __init__(self, consumer: AIOKafkaConsumer, listener: ForwardingListener) -> None:
        self.consumer = consumer
        self.listener = listener


def start_consumer(settings: Settings) -> tuple[AIOKafkaConsumer, ForwardingListener]:
    """The worker's consumer (not started), subscribed with a forwarding listener."""
    kafka, stream = settings.kafka, settings.stream
    consumer = AIOKafkaConsumer(**consumer_kwargs(kafka, stream.batch_max, stream.fetch_max_wait_ms))
    listener = ForwardingListener()
    consumer.subscribe([kafka.applications_topic], listener=listener)
    return consumer, listener


def load_while_joining(settings: Settings, load: Callable[[], T]) -> tuple[T, JoinedConsumer | None]:
    """``load()`` on a thread while the group is joined on the current thread's event loop (the one
    the Faust worker runs next, :func:`mode.utils.loops.get_event_loop`). Returns what ``load``
    returned and the started consumer (None if the join failed); if ``load`` raises, the consumer
    leaves the group and ``load``'s error goes up."""
    from mode.utils.loops import get_event_loop

    loop = get_event_loop()
    started = time.monotonic()

    async def both() -> tuple[T, JoinedConsumer | None]:
        loading = asyncio.ensure_future(loop.run_in_executor(None, load))
        joining = asyncio.ensure_future(_join(settings))
        try:
            result = await loading
        except BaseException:
            joining.cancel()  # no-op once started; a join still connecting stops here
            joined = await _settle(joining, quiet=True)
            if joined is not None:
                await joined.consumer.stop()  # leave the group: the others take the partitions at once
            raise
        return result, await _settle(joining)

    with _HeldLogs("aiokafka") as held:  # a model that fails to load is the one error to show
        result, joined = loop.run_until_complete(both())
        held.replay()
    log.info(
        "model ready %.2f s after the group join started (joined: %s)",
        time.monotonic() - started,
        bool(joined and joined.consumer.assignment()),
    )
    return result, joined


class _HeldLogs(logging.Handler):
    """Holds a logger's records (e.g. a broker that is down) until :meth:`replay`; dropped when the
    block raises: the model's error alone is printed, as when the model was loaded before the join."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.logger = logging.getLogger(name)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> _HeldLogs:
        self._propagate, self.logger.propagate = self.logger.propagate, False
        self.logger.addHandler(self)
        return self

    def replay(self) -> None:
        self.__exit__()
        for record in self.records:
            self.logger.handle(record)
        self.records.clear()

    def __exit__(self, *exc: object) -> None:
        if self in self.logger.handlers:
            self.logger.removeHandler(self)
            self.logger.propagate = self._propagate


async def _join(settings: Settings) -> JoinedConsumer:
    consumer, listener = start_consumer(settings)  # aiokafka: created inside a coroutine
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    return JoinedConsumer(consumer, listener)


async def _settle(joining: asyncio.Future[JoinedConsumer], quiet: bool = False) -> JoinedConsumer | None:
    """The early join's consumer, or None when it failed: the source then starts its own consumer at the
    worker's start, with the usual handling of a broker that is down (the early join only saves time)."""
    try:
        return await joining
    except asyncio.CancelledError:
        return None
    except Exception as exc:
        if not quiet:
            log.warning("early group join failed (%s); the worker joins when it starts", exc)
        return None
