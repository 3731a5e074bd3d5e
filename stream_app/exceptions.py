"""Exceptions of the stream worker package."""

from __future__ import annotations


class StreamError(Exception):
    """Base class of every stream_app error."""


class ModelNotFoundError(StreamError):
    """No model directory to score with (settings.model.path unset and nothing under var/models)."""


class MetricsPortError(StreamError):
    """The /metrics HTTP server cannot listen on settings.stream.metrics_port."""


class PolicyConfigError(StreamError):
    """The decision policy or the reason catalogue is invalid or does not fit the model (names the rule
    and the field)."""
