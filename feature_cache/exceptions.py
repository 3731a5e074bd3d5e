"""Errors of the Redis feature cache. Messages name the server (never its password), version or key.

A feature table that cannot be read for loading raises feature_loader's RawDataError family: the table
is the feature build's artifact.
"""

from __future__ import annotations


class FeatureCacheError(Exception):
    """Base class: the cache cannot serve or store client features."""


class CacheUnavailableError(FeatureCacheError):
    """Redis cannot be reached (after retries where retrying makes sense)."""


class FeatureVersionMismatchError(FeatureCacheError):
    """The cache's feature-schema version is not the one the model was trained on."""


class NoCurrentVersionError(FeatureCacheError):
    """Nothing has been loaded and switched live in the cache yet."""
