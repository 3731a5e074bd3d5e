"""The worker's feature source: the Redis client-feature cache, one round trip per micro-batch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from credit_scorer.settings import RedisSettings
from feature_cache.exceptions import FeatureCacheError
from scoring.service import CachedFeatures

log = logging.getLogger(__name__)


class RedisFeatures:
    """Adapter over :class:`feature_cache.store.RedisFeatureStore` (client made in start()).

    Every cache fault (Redis down, version not loaded yet, unreadable vector) is *transient* for the
    engine: the batch waits and retries with backoff; valid events are never dead-lettered for it.
    """

    transient_errors: tuple[type[BaseException], ...] = (FeatureCacheError,)

    def __init__(self, settings: RedisSettings, feature_version: str) -> None:
        self.settings = settings
        self.feature_version = feature_version
        self._client: Any = None
        self._store: Any = None

    async def start(self) -> None:
        from feature_cache.store import RedisFeatureStore, create_redis_client

        self._client = create_redis_client(self.settings)
        self._store = RedisFeatureStore(self._client, self.settings.key_prefix, pipelined=True)
        try:
            await self._store.check_compatible(self.feature_version)
        except FeatureCacheError as exc:  # the engine retries per batch; say it once, loudly
            log.warning("feature cache not ready yet: %s", exc)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if self._store is not None:
            await self._store.aclose()
        if client is not None:
            await client.aclose()

    async def fetch(self, sk_ids: Sequence[int]) -> CachedFeatures:
        batch = await self._store.fetch(sk_ids, version=self.feature_version)
        return CachedFeatures(batch.matrix, batch.found, batch.feature_version, batch.loaded_at)
