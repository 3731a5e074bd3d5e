"""Key names of the client-feature cache in Redis (pure functions, no I/O).

Layout (like Feast's online store), with ``p`` = ``settings.redis.key_prefix`` and ``v`` = the
feature-schema version (:attr:`FeatureSchema.version`)::

    {p}:fv:{v}:{sk_id_curr}   raw float32 little-endian bytes of the full vector, schema order
    {{p}}:schema:{v}          the FeatureSchema JSON (stored once per version)
    {{p}}:meta:{v}            hash: clients, bytes, n_features, encoding, loaded_at, complete, source
    {{p}}:current             the live version (switched atomically)

Redis Cluster: a vector key has no hash tag, so clients spread evenly over the 16,384 slots (and the
nodes); the version-control keys (schema, meta, current) carry the prefix as their hash tag
(``{cs}:current``), so they share ONE slot: the switch's check-and-set is a single-slot Lua script
(a cluster refuses CROSSSLOT), and every reader finds them on the same node. Readers touch that slot
once per :data:`feature_cache.store.META_REFRESH_S` per version, so it is no hot spot. A prefix may not
contain braces (they would become the vectors' hash tag and put every client on one slot).

The prefix may contain ``:`` (e.g. ``cs:test-1a2b``); versions and ids may not, so every key parses
back unambiguously from the right.
"""

from __future__ import annotations

import binascii
import operator
from collections.abc import Iterable

import numpy as np

VECTOR_ENCODING = "f32le"  # the value format written in meta["encoding"]
_GLOB_SPECIALS = "\\*?[]"
N_SLOTS = 16_384  # Redis Cluster hash slots


def _check_prefix(prefix: str) -> None:
    if not prefix or any(c.isspace() or c in "{}" for c in prefix):
        raise ValueError(
            f"invalid Redis key prefix {prefix!r}: it must be non-empty, without whitespace or braces"
        )


def check_version(version: str) -> str:
    """Return ``version`` if it can be part of a key (non-empty, no ``:``, no whitespace, no glob)."""
    if (
        not isinstance(version, str)
        or not version
        or ":" in version
        or any(c.isspace() or c in _GLOB_SPECIALS for c in version)
    ):
        raise ValueError(
            f"invalid feature version {version!r}: expected a schema hash such as 3f2a9c1e0b7d4a55"
        )
    return version


def control_head(prefix: str) -> str:
    """``{prefix}``: the hash tag shared by the version-control keys (one cluster slot)."""
    _check_prefix(prefix)
    return "{" + prefix + "}"


def current_key(prefix: str) -> str:
    return f"{control_head(prefix)}:current"


def schema_key(prefix: str, version: str) -> str:
    return f"{control_head(prefix)}:schema:{check_version(version)}"


def meta_key(prefix: str, version: str) -> str:
    return f"{control_head(prefix)}:meta:{check_version(version)}"


def vector_key_prefix(prefix: str, version: str) -> bytes:
    """The bytes every vector key of ``version`` starts with (``b"{p}:fv:{v}:"``)."""
    _check_prefix(prefix)
    return f"{prefix}:fv:{check_version(version)}:".encode()


def vector_key(prefix: str, version: str, sk_id: int) -> bytes:
    return vector_key_prefix(prefix, version) + b"%d" % operator.index(sk_id)


def _as_int_list(sk_ids: Iterable[int] | np.ndarray) -> list[int]:
    if isinstance(sk_ids, np.ndarray):
        if sk_ids.dtype.kind not in "iu":
            raise TypeError(f"client ids must be integers, got an array of {sk_ids.dtype}")
        return list(sk_ids.ravel().tolist())  # Python ints
    ids = list(sk_ids)
    if all(type(i) is int for i in ids):  # the fast, common path
        return ids
    try:
        return [operator.index(i) for i in ids]  # rejects floats, strings, None
    except TypeError:
        bad = next(i for i in ids if not _is_int_like(i))
        raise TypeError(f"client ids must be integers, got {bad!r} ({type(bad).__name__})") from None


def _is_int_like(value: object) -> bool:
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def vector_keys(prefix: str, version: str, sk_ids: Iterable[int] | np.ndarray) -> list[bytes]:
    """Vector keys of many clients, in order (bytes: redis-py sends them without re-encoding)."""
    head = vector_key_prefix(prefix, version)
    return [b"%b%d" % (head, i) for i in _as_int_list(sk_ids)]


def encode_ids(sk_ids: Iterable[int] | np.ndarray) -> list[bytes]:
    """Decimal ASCII of each client id (the last part of a vector key)."""
    return [b"%d" % i for i in _as_int_list(sk_ids)]


def glob_escape(text: str) -> str:
    """Escape Redis glob specials so ``text`` matches itself in SCAN MATCH."""
    return "".join("\\" + c if c in _GLOB_SPECIALS else c for c in text)


def vector_pattern(prefix: str, version: str) -> str:
    """SCAN MATCH pattern of every vector key of ``version``."""
    _check_prefix(prefix)
    return f"{glob_escape(prefix)}:fv:{check_version(version)}:*"


def meta_pattern(prefix: str) -> str:
    """SCAN MATCH pattern of the meta hash of every version."""
    return f"{glob_escape(control_head(prefix))}:meta:*"


def version_of_meta_key(prefix: str, key: bytes | str) -> str:
    """Inverse of :func:`meta_key`."""
    text = key.decode() if isinstance(key, bytes) else key
    head = f"{control_head(prefix)}:meta:"
    if not text.startswith(head):
        raise ValueError(f"{text!r} is not a meta key under prefix {prefix!r}")
    return check_version(text[len(head) :])


def parse_vector_key(key: bytes | str) -> tuple[str, str, int]:
    """Inverse of :func:`vector_key`: ``(prefix, version, sk_id)``."""
    text = key.decode() if isinstance(key, bytes) else key
    parts = text.rsplit(":", 3)
    if len(parts) != 4 or parts[1] != "fv":
        raise ValueError(f"{text!r} is not a feature-vector key ({{prefix}}:fv:{{version}}:{{sk_id}})")
    prefix, _, version, raw_id = parts
    try:
        sk_id = int(raw_id)
    except ValueError:
        raise ValueError(f"{text!r} is not a feature-vector key: id {raw_id!r} is not an integer") from None
    return prefix, check_version(version), sk_id


def key_slot(key: bytes) -> int:
    """The Redis Cluster hash slot of ``key`` (CRC16/XMODEM of its hash tag, or of the whole key)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return binascii.crc_hqx(key, 0) % N_SLOTS
