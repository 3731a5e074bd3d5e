"""Errors of the credit_scorer package (settings, CLI root, retries)."""

from __future__ import annotations


class CreditScorerError(Exception):
    """Base class of the credit_scorer package's errors."""


class StoppedError(CreditScorerError):
    """Asked to stop while waiting for a dependency to come back (``credit_scorer.retry``): the work in
    hand is left unacknowledged and done again later."""
