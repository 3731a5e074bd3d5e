"""Errors of the decision store."""

from __future__ import annotations


class DecisionStoreError(Exception):
    """Base class of the decision store's errors."""


class UndecodableDecisionError(DecisionStoreError):
    """A record of the decisions topic that is not a readable decision (the message names the field)."""


class StoreUnavailableError(DecisionStoreError):
    """The database cannot be reached or answered with a transient fault."""
