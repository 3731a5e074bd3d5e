"""Key encoding of the Redis feature cache (pure functions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feature_cache.keys import (
    N_SLOTS,
    check_version,
    current_key,
    encode_ids,
    glob_escape,
    key_slot,
    meta_key,
    meta_pattern,
    parse_vector_key,
    schema_key,
    vector_key,
    vector_key_prefix,
    vector_keys,
    vector_pattern,
    version_of_meta_key,
)

prefixes = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters="{}"),
    min_size=1,
    max_size=20,
)
versions = st.text(alphabet="0123456789abcdef", min_size=1, max_size=16)
ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def test_layout_matches_the_architecture_document() -> None:
    assert vector_key("cs", "3f2a9c1e0b7d4a55", 100002) == b"cs:fv:3f2a9c1e0b7d4a55:100002"
    assert schema_key("cs", "3f2a") == "{cs}:schema:3f2a"
    assert meta_key("cs", "3f2a") == "{cs}:meta:3f2a"
    assert current_key("cs") == "{cs}:current"
    assert vector_key_prefix("cs", "3f2a") == b"cs:fv:3f2a:"


@given(prefix=prefixes, version=versions, sk_id=ids)
def test_vector_key_parses_back_even_with_colons_in_the_prefix(prefix: str, version: str, sk_id: int) -> None:
    assert parse_vector_key(vector_key(prefix, version, sk_id)) == (prefix, version, sk_id)


@given(prefix=prefixes, version=versions)
def test_meta_key_parses_back(prefix: str, version: str) -> None:
    assert version_of_meta_key(prefix, meta_key(prefix, version).encode()) == version


@given(sk_ids=st.lists(ids, max_size=50))
def test_vector_keys_equal_one_key_per_id_in_order(sk_ids: list[int]) -> None:
    assert vector_keys("p:x", "ab12", sk_ids) == [vector_key("p:x", "ab12", i) for i in sk_ids]
    assert vector_keys("p:x", "ab12", np.array(sk_ids, dtype=np.int64)) == vector_keys("p:x", "ab12", sk_ids)
    assert encode_ids(sk_ids) == [str(i).encode() for i in sk_ids]


def test_numpy_integer_scalars_are_accepted() -> None:
    scalars: list[Any] = [np.int64(7), np.uint32(8)]
    assert vector_keys("cs", "v1", scalars) == [b"cs:fv:v1:7", b"cs:fv:v1:8"]


@pytest.mark.parametrize("bad", [[1, 2.5], [1, "3"], [None]])
def test_non_integer_ids_are_rejected_by_name(bad: list[object]) -> None:
    with pytest.raises(TypeError, match="client ids must be integers"):
        vector_keys("cs", "v1", bad)  # type: ignore[arg-type]


def test_float_arrays_are_rejected() -> None:
    with pytest.raises(TypeError, match="float64"):
        vector_keys("cs", "v1", np.array([1.0, 2.0]))


@pytest.mark.parametrize("bad", ["", "a:b", "a b", "a*", "v[1]", "\\x"])
def test_versions_that_would_break_the_layout_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid feature version"):
        check_version(bad)
    with pytest.raises(ValueError, match="invalid feature version"):
        meta_key("cs", bad)


@pytest.mark.parametrize("bad", ["", "c s", "{cs}", "a}b"])
def test_bad_prefixes_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid Redis key prefix"):
        current_key(bad)


def test_scan_patterns_escape_glob_specials_of_the_prefix() -> None:
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert vector_pattern("t[1]", "ab") == "t\\[1\\]:fv:ab:*"
    assert meta_pattern("t*") == "{t\\*}:meta:*"


@pytest.mark.parametrize("key", [b"cs:meta:v1:1", b"cs:fv:v1:x1", b"fv:1", b"cs:fv::1"])
def test_malformed_vector_keys_are_rejected(key: bytes) -> None:
    with pytest.raises(ValueError):
        parse_vector_key(key)


def test_meta_key_of_another_prefix_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a meta key"):
        version_of_meta_key("cs", b"{other}:meta:v1")


@given(prefix=prefixes, version=versions)
def test_control_keys_share_one_cluster_slot(prefix: str, version: str) -> None:
    """The switch's Lua script touches current, meta and schema: a cluster runs it only on one slot."""
    slots = {
        key_slot(k.encode())
        for k in (current_key(prefix), meta_key(prefix, version), schema_key(prefix, version))
    }
    assert len(slots) == 1


def test_vector_keys_spread_evenly_over_slots_and_match_redis_py() -> None:
    from redis.crc import key_slot as redis_py_key_slot

    keys = vector_keys("cs", "3f2a9c1e0b7d4a55", np.arange(100_000, 130_000))
    slots = np.array([key_slot(k) for k in keys])
    assert [key_slot(k) for k in keys[:500]] == [redis_py_key_slot(k) for k in keys[:500]]
    # three nodes own a third of the slots each: each gets a third of the clients, give or take 2 %
    per_node = np.bincount(slots * 3 // N_SLOTS, minlength=3) / len(keys)
    assert np.all(np.abs(per_node - 1 / 3) < 0.02), per_node
    assert len(set(slots.tolist())) > 10_000  # no tag: the keys use most slots (a tag: 1)
