"""Errors of the Kafka adapters."""

from __future__ import annotations


class KafkaIOError(Exception):
    """Base class of every kafka_io error."""


class RecordTooLargeError(KafkaIOError, ValueError):
    """One record does not fit in an empty producer batch (max_batch_size); the message gives its size."""
