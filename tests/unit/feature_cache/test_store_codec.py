"""Pure parts of the cache reader: vector decoding, client construction and error messages."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import SecretStr

from credit_scorer.settings import RedisSettings
from feature_cache.exceptions import CacheUnavailableError, FeatureCacheError
from feature_cache.store import (
    create_redis_client,
    create_sync_redis_client,
    decode_vectors,
    describe_client,
    mask_url,
    translate_redis_error,
)


def _bits(matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(matrix).view(np.uint32)


def test_decode_keeps_request_order_nan_rows_and_exact_bits() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows.view(np.uint32)[1, 2] = 0x7FC0BEEF  # NaN with a payload
    values = [rows[0].tobytes(), None, rows[1].tobytes(), rows[2].tobytes(), None]
    matrix, found = decode_vectors(values, 4)
    assert matrix.dtype == np.float32 and matrix.shape == (5, 4)
    assert found.tolist() == [True, False, True, True, False]
    np.testing.assert_array_equal(_bits(matrix[found]), _bits(rows))
    assert np.isnan(matrix[~found]).all()
    assert matrix.flags.writeable  # the scorer overwrites event fields in place


def test_decode_when_every_id_is_found_is_writable_and_exact() -> None:
    rows = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    matrix, found = decode_vectors([r.tobytes() for r in rows], 5)
    assert found.all() and matrix.dtype == np.float32 and matrix.flags.writeable
    np.testing.assert_array_equal(_bits(matrix), _bits(rows))


def test_decode_of_nothing_found_and_of_an_empty_batch() -> None:
    matrix, found = decode_vectors([None, None], 3)
    assert not found.any() and np.isnan(matrix).all() and matrix.shape == (2, 3)
    matrix, found = decode_vectors([], 3)
    assert matrix.shape == (0, 3) and found.shape == (0,)


def test_decode_rejects_a_value_of_the_wrong_size() -> None:
    with pytest.raises(FeatureCacheError, match="12 bytes where 4 float32 \\(16 bytes\\)"):
        decode_vectors([np.zeros(4, np.float32).tobytes(), np.zeros(3, np.float32).tobytes()], 4)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://bob:hunter2@cache:6380/1", "rediss://bob:***@cache:6380/1"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_clients_honour_password_db_pool_size_and_tls_without_connecting() -> None:
    settings = RedisSettings(
        url="redis://cache.internal:6380/0", password=SecretStr("hunter2"), db=3, tls=True, max_connections=7
    )
    for client in (create_redis_client(settings), create_sync_redis_client(settings)):
        kw = client.connection_pool.connection_kwargs
        assert kw["password"] == "hunter2" and kw["db"] == 3
        assert client.connection_pool.max_connections == 7
        assert describe_client(client) == "rediss://cache.internal:6380/3"
        assert "hunter2" not in describe_client(client)


def test_invalid_url_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(FeatureCacheError, match="invalid Redis URL") as info:
        create_sync_redis_client(RedisSettings(url="http://:hunter2@cache:1/0"))
    assert "hunter2" not in str(info.value)


def test_connection_errors_become_cache_unavailable() -> None:
    import redis

    err = translate_redis_error(redis.exceptions.ConnectionError("Connection refused"), "redis://h:1/0")
    assert isinstance(err, CacheUnavailableError)
    assert str(err) == "Redis at redis://h:1/0 is unavailable: Connection refused"
    other = translate_redis_error(redis.exceptions.ResponseError("WRONGTYPE"), "redis://h:1/0")
    assert type(other) is FeatureCacheError
