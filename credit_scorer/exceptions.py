"""Errors of the credit_scorer package (settings, CLI root, local service launchers)."""

from __future__ import annotations


class CreditScorerError(Exception):
    """Base class of the credit_scorer package's errors."""


class RedisServerError(CreditScorerError):
    """A local redis-server could not be found or started (the message says why, with its log tail)."""
