"""Errors of the feature_loader package. Each message names the file, row or field at fault."""

from __future__ import annotations


class FeatureLoaderError(Exception):
    """Base class: everything feature_loader raises on bad input or an unavailable dependency."""


# --- raw data / feature build -------------------------------------------------------------------
class RawDataError(FeatureLoaderError):
    """The raw Home Credit tables are unusable (missing file, missing column, bad value)."""


class MissingFileError(RawDataError):
    pass


class MissingColumnError(RawDataError):
    pass


# --- feature contract ---------------------------------------------------------------------------
class FeatureContractError(FeatureLoaderError):
    """A pinned feature schema cannot be built by this code (the message names the schema and field)."""
