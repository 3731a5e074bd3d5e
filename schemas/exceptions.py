"""Errors of the event contracts: every bad input becomes one :class:`InvalidEvent`."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Bounded set of reasons an event is dead-lettered (also the ``reason`` label of the metric)."""

    OVERSIZED = "oversized"  # payload larger than the configured limit
    BAD_ENCODING = "bad_encoding"  # not UTF-8 text
    BAD_JSON = "bad_json"  # not parseable JSON
    SCHEMA = "schema"  # not an object, missing/unknown-typed field, wrong type, too long a string
    NON_FINITE = "non_finite"  # NaN / Infinity / a number overflowing to infinity
    OUT_OF_RANGE = "out_of_range"  # negative or absurd amount, hour outside 0..23, ids <= 0, …
    UNSUPPORTED_VERSION = "unsupported_version"  # schema_version this build cannot read
    UNSCORABLE = "unscorable"  # valid event the scorer could not use (named field)


class SchemaError(Exception):
    """Base class of the schemas package's errors."""


class InvalidEvent(SchemaError):
    """An input event is unusable. ``kind`` is bounded (metric label); ``message`` names the field."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type[InvalidEvent], tuple[ErrorKind, str]]:
        return (type(self), (self.kind, self.message))


class InvalidRecord(SchemaError):
    """A Decision or DeadLetter record cannot be decoded (downstream consumers, replay)."""
