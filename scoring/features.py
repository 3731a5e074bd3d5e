"""What the scorer reads of the client-feature cache: :class:`CachedFeatures`, and the one interface
(:class:`FeatureSource`) through which the worker, the REST API and replay read it.

The Redis cache (``feature_cache.store``) returns this type directly; its adapter
``RedisFeatureSource`` is the :class:`FeatureSource` of all three, with one retry policy for
transient cache faults. Whether the features match the model is checked in one place:
:meth:`scoring.prepared.PreparedModel.check_features`, called by :func:`scoring.decide.decide`.
Pure: numpy and the feature schema only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from feature_loader.feature_schema import FeatureSchema


@dataclass(frozen=True, slots=True)
class CachedFeatures:
    """Cached vectors of a batch of clients, rows in request order."""

    matrix: np.ndarray  # (n, F) float32, schema order, NaN rows for clients not in the cache
    found: np.ndarray  # (n,) bool
    feature_version: str
    loaded_at: float | None  # epoch seconds of the cache load (None = unknown)

    @classmethod
    def missing(cls, n: int, schema: FeatureSchema) -> CachedFeatures:
        """No cached client features (e.g. an API call without the cache): application fields only."""
        return cls(
            np.full((n, len(schema)), np.nan, dtype=np.float32), np.zeros(n, dtype=bool), schema.version, None
        )

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def take(self, rows: Sequence[int]) -> CachedFeatures:
        """The features of ``rows`` only, in that order (same version and load time)."""
        idx = np.asarray(rows, dtype=np.int64)
        return CachedFeatures(
            self.matrix[idx], np.asarray(self.found)[idx], self.feature_version, self.loaded_at
        )


class FeatureSource(Protocol):
    """The cached client features of one feature version (the model's), read a batch at a time.

    ``fetch`` follows the source's retry policy on transient cache faults: it returns once the cache
    answers, raises the last fault when the policy's attempts are spent, or raises
    :class:`credit_scorer.exceptions.StoppedError` when ``stopping`` is set while it waits."""

    feature_version: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def fetch(
        self, sk_ids: Sequence[int], *, stopping: asyncio.Event | None = None
    ) -> CachedFeatures: ...
