"""Errors of the developer tooling (local launchers, producer, demo). Each message names what failed."""

from __future__ import annotations


class DevtoolsError(Exception):
    """Base class of every devtools error."""


class BrokerStartError(DevtoolsError):
    """The local Tansu broker could not be started or did not accept connections in time."""


class RedisServerError(DevtoolsError):
    """A local redis-server could not be found or started (the message says why, with its log tail)."""


class ProducerError(DevtoolsError):
    """The producer cannot reach the broker or the topic (the message names them)."""


class ProducerInputError(DevtoolsError):
    """A producer input (file, row, field or option) is invalid; the message names it."""


class DemoError(DevtoolsError):
    """The embedded demo could not prepare or start one of its parts; the message names the step."""


class ServiceStartError(DevtoolsError):
    """A child service (API, officer view) exited or did not answer in time; the message names it."""
