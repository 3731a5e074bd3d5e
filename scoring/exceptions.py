"""Errors of the pure scoring core."""

from __future__ import annotations


class ScoringError(Exception):
    """Base class of the scoring core's errors."""


class ModelLoadError(ScoringError):
    """The model directory is missing a file or is unreadable."""


class ModelIntegrityError(ModelLoadError):
    """model.txt does not match the sha256 recorded in its model card (tampered or corrupted)."""


class SchemaMismatchError(ScoringError):
    """Feature schemas disagree (model vs feature table, model vs cache, model vs its own card)."""


class InvalidInputError(ScoringError):
    """An application field cannot be used for scoring (names the field)."""


class DriftReferenceError(ScoringError):
    """The model card's drift reference is malformed (names the histogram and the field)."""


class PolicyError(ScoringError):
    """The decision policy or the reason catalogue cannot be used (names the file, rule and field)."""


class PolicyFileError(PolicyError):
    """A policy or reason-catalogue file is unreadable or invalid."""


class PolicyBindError(PolicyError):
    """A policy rule names a field the model does not have."""


class CatalogueBindError(PolicyError):
    """Some features of the model's schema are covered by no reason group."""
