"""Exceptions of the stream worker package."""

from __future__ import annotations


class StreamError(Exception):
    """Base class of every stream_app error."""


class BrokerStartError(StreamError):
    """The local Tansu broker could not be started or did not accept connections in time."""


class ModelNotFoundError(StreamError):
    """No model directory to score with (settings.model.path unset and nothing under var/models)."""


class ProduceError(StreamError):
    """Decisions or dead letters could not be produced after every retry."""


class EngineStoppedError(StreamError):
    """The engine was asked to stop while waiting for a dependency to come back."""


class ProducerInputError(StreamError):
    """A producer input (file, row, field or option) is invalid; the message names it."""


class DemoError(StreamError):
    """The embedded demo could not prepare or start one of its parts; the message names the step."""


class MetricsPortError(StreamError):
    """The /metrics HTTP server cannot listen on settings.stream.metrics_port."""
