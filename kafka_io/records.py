"""Kafka record types: an outbound keyed record, a per-partition group of them, a consumed record, and
the dead-letter record of an unusable event (reason, message, original bytes, source position)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.codec import encode_dead_letter, make_dead_letter
from schemas.exceptions import InvalidEvent

Record = tuple[bytes | None, bytes]  # (key, value)


@dataclass(frozen=True, slots=True)
class PartitionBatch:
    """Records bound for one partition of one topic, in the order they must be written."""

    topic: str
    partition: int
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One consumed Kafka record (engine-neutral: built from aiokafka or Faust messages)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def dead_letter_record(record: InboundRecord, error: InvalidEvent, max_payload_bytes: int) -> Record:
    """The dead-letter Kafka record of ``record`` (same key, so it can be traced back)."""
    letter = make_dead_letter(
        record.value,
        error,
        max_payload_bytes=max_payload_bytes,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        failed_at=datetime.now(UTC),
    )
    return record.key, encode_dead_letter(letter)
