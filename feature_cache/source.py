"""THE feature source of the stream worker, ``POST /predict`` and replay: the Redis client-feature cache,
read in the model's feature version, one round trip per batch, with one retry policy.

:class:`RedisFeatureSource` is the :class:`scoring.features.FeatureSource` of all three. Its client is
created in :meth:`start` (never at import). Every cache fault — Redis down, the version not loaded yet
or only partly, an unreadable vector — is *transient*: :meth:`fetch` retries it with the source's
:class:`credit_scorer.retry.Backoff` (each retry counted as ``credit_scorer_retries_total{dependency=
"redis"}`` when metrics are given). The worker and replay wait until it heals or they are asked to stop;
the API gives it a budget of attempts, then answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from credit_scorer.retry import Backoff, RetryMetrics, retry_transient
from credit_scorer.settings import RedisSettings
from feature_cache.exceptions import FeatureCacheError
from feature_cache.store import AsyncClient, RedisFeatureStore, create_redis_client
from scoring.features import CachedFeatures

log = logging.getLogger(__name__)


class RedisFeatureSource:
    """The model's feature version from the Redis cache (see the module docstring)."""

    transient_errors: tuple[type[BaseException], ...] = (FeatureCacheError,)

    def __init__(
        self,
        settings: RedisSettings,
        feature_version: str,
        backoff: Backoff,
        *,
        metrics: RetryMetrics | None = None,
        expect_live: bool = True,
    ) -> None:
        """``expect_live``: warn at start when the cache's live version is not ``feature_version`` (the
        worker, the API); replay reads any loaded version and checks it itself (:meth:`check_loaded`)."""
        self.settings = settings
        self.feature_version = feature_version
        self.backoff = backoff
        self.metrics = metrics
        self.expect_live = expect_live
        self._client: AsyncClient | None = None
        self._store: RedisFeatureStore | None = None

    @property
    def store(self) -> RedisFeatureStore:
        """The underlying store (versions, ping: /health and tools)."""
        if self._store is None:
            raise RuntimeError("feature source not started")
        return self._store

    async def start(self) -> None:
        client = create_redis_client(self.settings)
        self._client = client
        self._store = RedisFeatureStore(client, self.settings.key_prefix, pipelined=True)
        if not self.expect_live:
            return
        try:
            await self._store.check_compatible(self.feature_version)
        except FeatureCacheError as exc:  # fetches wait for it (retried); say it once, loudly
            log.warning("feature cache not ready yet: %s", exc)

    async def stop(self) -> None:
        store, self._store = self._store, None
        client, self._client = self._client, None
        if store is not None:
            await store.aclose()
        if client is not None:
            await client.aclose()

    async def check_loaded(self) -> None:
        """Raise FeatureCacheError unless the source's version is loaded and complete (no retry)."""
        await self.store.fetch([], version=self.feature_version)

    async def fetch(self, sk_ids: Sequence[int], *, stopping: asyncio.Event | None = None) -> CachedFeatures:
        """The vectors of ``sk_ids`` in the model's version, transient faults retried (module docstring)."""
        store = self.store
        version = self.feature_version
        return await retry_transient(
            lambda: store.fetch(sk_ids, version=version),
            dependency="redis",
            transient=self.transient_errors,
            backoff=self.backoff,
            metrics=self.metrics,
            stopping=stopping,
        )
