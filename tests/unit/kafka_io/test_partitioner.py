"""The Java client's partitioner: one key at a time, in bulk (murmur2_many), and grouping per partition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_io.partitioner import group_by_partition, murmur2_many, partition_for


def test_partition_for_matches_the_java_client() -> None:
    # aiokafka's DefaultPartitioner implements the Java client's rule: toPositive(murmur2(key)) % n.
    from aiokafka.partitioner import DefaultPartitioner

    parts = [0, 1, 2, 3]
    for key in (b"a", b"app-1", b"application-000042", b"\x00\xff"):
        assert partition_for(key, parts) == DefaultPartitioner()(key, parts, parts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=60))
def test_bulk_murmur2_equals_the_java_clients_hash(keys: list[bytes]) -> None:
    from aiokafka.partitioner import murmur2

    assert murmur2_many(keys).tolist() == [murmur2(k) for k in keys]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=24)), max_size=40), st.integers(1, 7))
def test_group_by_partition_puts_every_key_where_partition_for_does(
    keys: list[bytes | None], n_partitions: int
) -> None:
    parts = list(range(n_partitions))
    records = [(k, b"%d" % i) for i, k in enumerate(keys)]
    groups = group_by_partition("t", records, parts)
    assert sorted((r for g in groups for r in g.records), key=lambda r: int(r[1])) == records
    for g in groups:
        assert all(k is None or partition_for(k, parts) == g.partition for k, _ in g.records)


def test_group_by_partition_keeps_each_partition_in_order() -> None:
    records = [(f"k{i % 7}".encode(), f"v{i}".encode()) for i in range(100)]
    groups = group_by_partition("t", records, [0, 1, 2])
    assert sum(len(g.records) for g in groups) == 100
    for g in groups:
        values = [int(v[1:]) for _, v in g.records]
        assert values == sorted(values)
        assert all(partition_for(k, [0, 1, 2]) == g.partition for k, _ in g.records)
