"""The Java client's default partitioner (murmur2 of the key), so a record lands where any Kafka client
would put its key; hashed for a whole batch of keys at once."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from aiokafka.partitioner import murmur2

from kafka_io.records import PartitionBatch, Record

_M = np.uint32(0x5BD1E995)  # murmur2's mixing constant


def partition_for(key: bytes | None, partitions: Sequence[int]) -> int:
    """Java-compatible default partitioning (murmur2 of the key; random when there is no key)."""
    if key is None:
        return random.choice(partitions)
    idx = (murmur2(key) & 0x7FFFFFFF) % len(partitions)
    return partitions[idx]


def murmur2_many(keys: Sequence[bytes]) -> np.ndarray:
    """``[murmur2(k) for k in keys]`` (the Java client's hash, as uint32) for a whole batch at once:
    keys of one length are hashed together, column by column, in uint32 numpy arithmetic (which wraps
    mod 2**32 like Java's int), cheaper per key than the pure-Python ``murmur2`` for a batch of
    hundreds of application ids; equality is property-tested."""
    out = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    for length, idx in by_length.items():
        rows = np.frombuffer(b"".join([keys[i] for i in idx]), dtype=np.uint8).reshape(len(idx), length)
        h = np.full(len(idx), (0x9747B28C ^ length) & 0xFFFFFFFF, dtype=np.uint32)
        n4 = length // 4
        words = np.ascontiguousarray(rows[:, : n4 * 4]).view("<u4")  # (n, n4) little-endian blocks
        for j in range(n4):
            k = words[:, j] * _M
            k ^= k >> np.uint32(24)
            k *= _M
            h *= _M
            h ^= k
        tail, base = length % 4, n4 * 4
        if tail >= 3:
            h ^= rows[:, base + 2].astype(np.uint32) << np.uint32(16)
        if tail >= 2:
            h ^= rows[:, base + 1].astype(np.uint32) << np.uint32(8)
        if tail >= 1:
            h ^= rows[:, base].astype(np.uint32)
            h *= _M
        h ^= h >> np.uint32(13)
        h *= _M
        h ^= h >> np.uint32(15)
        out[np.asarray(idx)] = h
    return out


def group_by_partition(
    topic: str, records: Sequence[Record], partitions: Sequence[int]
) -> list[PartitionBatch]:
    """Split records into per-partition groups, keeping each partition's order (keys hashed in bulk,
    :func:`murmur2_many`; the partition of each key is :func:`partition_for`'s)."""
    ordered = sorted(partitions)
    keyed = [i for i, rec in enumerate(records) if rec[0] is not None]
    keys: list[bytes] = [key for key, _ in records if key is not None]
    slots = (murmur2_many(keys) & np.uint32(0x7FFFFFFF)) % np.uint32(len(ordered))
    chosen: list[int] = [0] * len(records)
    for i, slot in zip(keyed, slots.tolist(), strict=True):
        chosen[i] = ordered[slot]
    if len(keyed) < len(records):
        for i, rec in enumerate(records):
            if rec[0] is None:
                chosen[i] = random.choice(ordered)
    groups: dict[int, list[Record]] = {}
    for rec, p in zip(records, chosen, strict=True):
        groups.setdefault(p, []).append(rec)
    return [PartitionBatch(topic, p, tuple(recs)) for p, recs in groups.items()]
