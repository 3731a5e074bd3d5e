"""Errors of the training package. Each message names the file, row or field at fault."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of everything the training raises on bad input or an unusable result."""


class FeatureTableError(TrainingError):
    """The feature directory is unusable (missing/invalid file, missing column, no labelled rows)."""


class RawDataError(TrainingError):
    """The raw application table used by the baseline is unusable."""


class RegistryError(TrainingError):
    """MLflow registration or retrieval failed (unknown model/version, unreachable store)."""
