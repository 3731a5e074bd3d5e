"""Errors of the credit_scorer package (settings, CLI root)."""

from __future__ import annotations


class CreditScorerError(Exception):
    """Base class of the credit_scorer package's errors."""
