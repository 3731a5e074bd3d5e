"""aiokafka client arguments from :class:`credit_scorer.settings.KafkaSettings` (shared by every client)."""

from __future__ import annotations

from typing import Any

from credit_scorer.settings import KafkaSettings


def client_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security arguments common to aiokafka consumers, producers and admin clients."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "request_timeout_ms": int(kafka.request_timeout_s * 1000),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        kwargs["ssl_context"] = create_ssl_context()
    if kafka.sasl_mechanism:
        kwargs["sasl_mechanism"] = kafka.sasl_mechanism
        kwargs["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            kwargs["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return kwargs


def consumer_kwargs(kafka: KafkaSettings, max_records: int, fetch_max_wait_ms: int = 5) -> dict[str, Any]:
    """Manual-commit group consumer; starts from the earliest offset when the group has none.

    ``auto_offset_reset="earliest"`` on purpose: a reset to "latest" asks ListOffsets LATEST, which
    Tansu answers wrongly (base offset of the last record batch + 1, not the log end).
    """
    return {
        **client_kwargs(kafka),
        "group_id": kafka.consumer_group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(kafka.session_timeout_s * 1000),
        "heartbeat_interval_ms": max(100, int(kafka.session_timeout_s * 1000 / 3)),
        "rebalance_timeout_ms": int(kafka.rebalance_timeout_s * 1000),
        "max_poll_interval_ms": max(int(kafka.rebalance_timeout_s * 1000), 60_000),
        "max_poll_records": max_records,
        "fetch_max_wait_ms": fetch_max_wait_ms,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        "isolation_level": "read_uncommitted",
    }


def producer_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Acks from every in-sync replica; no idempotence (Tansu has no InitProducerId)."""
    return {
        **client_kwargs(kafka),
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 0,
        "max_batch_size": 512 * 1024,
        "max_request_size": 4 * 1024 * 1024,
    }
